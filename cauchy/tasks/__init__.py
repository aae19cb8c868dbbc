"""Tasks (cls, det, seg, pose): what each adds to the hypes, declared in its own module here.

Torch-free, so the control service validates a task's hypes without importing it. Adding a task is
one module in this package calling :func:`register_task` (every module here is imported), plus
its method (``cauchy/methods/``) and evaluators (``cauchy/metrics/``); no generic module changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cauchy.registry import TASKS, import_submodules
from cauchy.schema import Schema


@dataclass(frozen=True)
class Task:
    """``schema`` is laid over the base hypes schema (``cauchy.hypes.SCHEMA``, nested sections merged
    key by key): keys it adds inside existing sections (``test.mode``) are validated like the others,
    and each new top-level section (det's ``anchor``, ``res``) is passed to the task's methods as a
    keyword argument of that name. ``method_keys`` are dotted keys inside existing sections that the
    methods take too, as a keyword argument named by the last part (seg's ``test.mode`` -> ``mode=``),
    passed when the resolved hypes hold them (a key inside a free ``params`` dict may be absent)."""

    name: str
    schema: Schema = field(default_factory=dict)
    method_keys: tuple[str, ...] = ()

    def method_sections(self, base: Schema) -> list[str]:
        """The top-level sections this task adds to ``base``: the method's keyword arguments."""
        return [name for name in self.schema if name not in base]

    def method_arguments(self, hypes: dict[str, Any], base: Schema) -> dict[str, Any]:
        """The keyword arguments the task's methods get from resolved ``hypes``: its own sections
        and its ``method_keys`` that are present."""
        out = {name: hypes[name] for name in self.method_sections(base)}
        for key in self.method_keys:
            node: Any = hypes
            for part in key.split("."):
                node = node.get(part, _ABSENT) if isinstance(node, dict) else _ABSENT
            if node is not _ABSENT:
                out[key.rsplit(".", 1)[-1]] = node
        return out


_ABSENT = object()


def register_task(task: Task) -> Task:
    TASKS.register(task.name)(task)
    return task


import_submodules(__name__, __path__)
