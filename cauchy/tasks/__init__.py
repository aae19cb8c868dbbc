"""Tasks (cls, det, seg, pose): what each adds to the hypes, declared in its own module here.

Torch-free, so the control service validates a task's hypes without importing it. Adding a task is
one module in this package calling :func:`register_task` (every module here is imported), plus
its method (``cauchy/methods/``) and evaluators (``cauchy/metrics/``); no generic module changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cauchy.registry import TASKS, import_submodules
from cauchy.schema import Schema


@dataclass(frozen=True)
class Task:
    """``schema`` is laid over the base hypes schema (``cauchy.hypes.SCHEMA``, nested sections merged
    key by key): keys it adds inside existing sections (``test.mode``) are validated like the others,
    and each new top-level section (det's ``anchor``, ``res``) is passed to the task's methods as a
    keyword argument of that name."""

    name: str
    schema: Schema = field(default_factory=dict)

    def method_sections(self, base: Schema) -> list[str]:
        """The top-level sections this task adds to ``base``: the method's keyword arguments."""
        return [name for name in self.schema if name not in base]


def register_task(task: Task) -> Task:
    TASKS.register(task.name)(task)
    return task


import_submodules(__name__, __path__)
