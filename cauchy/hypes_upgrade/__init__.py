"""Old torchcv hypes files, run unchanged: :func:`upgrade` turns a torchcv-shaped document into
Cauchy's and lists every key it translated or ignored (nothing is dropped silently).

A document is torchcv-shaped when the translation finds anything to do: each rule fires only on a
key or value Cauchy's schema refuses (``train_trans``, ``logging.rewrite``, ``fc_ce_loss``,
``random_hflip.ratio``, ...), so a Cauchy file comes back unchanged with no changes. Keys the
translation does not know pass through for validation to name. Torch-free: the service uses it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cauchy.files import atomic_write
from cauchy.hypes_upgrade import sections
from cauchy.hypes_upgrade.edit import IGNORED, TRANSLATED, Change, Editor
from cauchy.schema import check_document

__all__ = ["Change", "Upgrade", "save_report", "upgrade"]


@dataclass(frozen=True)
class Upgrade:
    """The Cauchy document and the changes that made it (empty for a Cauchy file)."""

    hypes: dict[str, Any]
    changes: list[Change] = field(default_factory=list)

    @property
    def is_torchcv(self) -> bool:
        return bool(self.changes)

    @property
    def translated(self) -> list[Change]:
        return [c for c in self.changes if c.kind == TRANSLATED]

    @property
    def ignored(self) -> list[Change]:
        return [c for c in self.changes if c.kind == IGNORED]

    def report(self) -> str:
        """The lines a run prints: a heading, then each change."""
        head = (f"torchcv hypes translated: {len(self.translated)} keys translated, "
                f"{len(self.ignored)} ignored")
        return "\n".join([head, *(f"  {c.line()}" for c in self.changes)])

    def as_json(self) -> dict[str, Any]:
        return {"translated": [c.as_json() for c in self.translated], "ignored": [c.as_json() for c in self.ignored]}


def upgrade(doc: Mapping[str, Any]) -> Upgrade:
    """``doc`` in Cauchy's form, with the list of what was translated and what was ignored. A document
    JSON cannot carry or nested too deep is a :class:`HypesError`, as in ``resolve_hypes``."""
    check_document(doc)
    ed = Editor(dict(doc))
    task = ed.get("task")
    task = task if isinstance(task, str) else ""
    sections.relocate(ed)
    fill = sections.rgb_order(ed)
    sections.data(ed, task)
    sections.details(ed, task)
    sections.method(ed)
    sections.pose_target(ed, task)
    sections.network(ed, task)
    sections.solver(ed)
    sections.loss(ed)
    sections.evaluation(ed, task)
    sections.transforms(ed, task, fill)
    sections.logging_section(ed)
    if not ed.changes:
        return Upgrade(dict(doc))
    sections.test_interval(ed)
    return Upgrade(ed.doc, ed.changes)


def save_report(result: Upgrade, path: str | os.PathLike) -> None:
    """The changes as JSON (``rundir.HYPES_UPGRADE`` in a run directory), for the job page to show."""
    text = json.dumps(result.as_json(), indent=2) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
