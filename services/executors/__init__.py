"""Executors: what runs a job's task (``CAUCHY_EXECUTOR``): ``local`` processes (the default) or a ``ray``
cluster (``CAUCHY_RAY_ADDRESS``). The supervisor talks to one through ``base.Executor`` (docs/executors.md)."""
from __future__ import annotations

from collections.abc import Callable

from services.config import Settings
from services.executors.base import Executor
from services.jobs.store import Store


def _local(settings: Settings, store: Store) -> Executor:
    from services.executors.local import LocalExecutor

    return LocalExecutor(settings, store)


def _ray(settings: Settings, store: Store) -> Executor:
    from services.executors.ray_cluster import RayExecutor  # the ray client is imported only when chosen

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
