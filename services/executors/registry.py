"""The executors by name (``CAUCHY_EXECUTOR``), each imported only when chosen (the ``ray`` one needs Ray)."""
from __future__ import annotations

from collections.abc import Callable

from services.config import Settings
from services.executors.base import Executor
from services.jobs.store import Store


def _local(settings: Settings, store: Store) -> Executor:
    from services.executors.local import LocalExecutor

    return LocalExecutor(settings, store)


def _ray(settings: Settings, store: Store) -> Executor:
    from services.executors.ray_cluster import RayExecutor

    return RayExecutor(settings, store)


EXECUTORS: dict[str, Callable[[Settings, Store], Executor]] = {"local": _local, "ray": _ray}


def executor_name(text: str) -> str:
    """A valid executor name, or a ValueError listing them (read by the settings)."""
    name = str(text).strip()
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")
    return name


def build_executor(settings: Settings, store: Store) -> Executor:
    return EXECUTORS[settings.executor](settings, store)
