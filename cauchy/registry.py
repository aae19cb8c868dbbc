"""Name -> component registries: hypes files name components by string, never by if/elif."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any


class UnknownComponentError(KeyError):
    """A hypes file named a component that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry:
    """A named table of factories, filled by the ``@REGISTRY.register()`` decorator.

    ``filled_by`` names a package whose modules (all of them, subpackages included) register into
    this table: they are imported when the table is first read, so importing a torch-free module of
    that package (the dataset tools the service uses) does not import the rest (torch).
    """

    def __init__(self, kind: str, filled_by: str | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}
        self._filled_by = filled_by

    def _fill(self) -> None:
        if self._filled_by is not None:
            package, self._filled_by = self._filled_by, None
            import_package_tree(package)

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = name or obj.__name__
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        self._fill()
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise UnknownComponentError(f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        self._fill()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._fill()
        return name in self._entries


MODELS = Registry("model")
DATASETS = Registry("dataset", filled_by="cauchy.datasets")
METHODS = Registry("method")
EVALUATORS = Registry("evaluator")
LOSSES = Registry("loss")
TRANSFORMS = Registry("transform", filled_by="cauchy.datasets")
TASKS = Registry("task")  # cauchy.tasks.Task, one per task module there


def import_submodules(package: str, path: Iterable[str]) -> None:
    """Imports every module of a package so each registers itself: a task's new file under
    ``cauchy/tasks``, ``methods``, ``metrics``, ``models`` or ``datasets`` is found without an index."""
    for info in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{info.name}")


def import_package_tree(package: str) -> None:
    """Imports a package and every module below it, subpackages included."""
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)
