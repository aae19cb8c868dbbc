"""The editing surface of the torchcv translation: move, rename and drop keys of a hypes document by
dotted path, each recorded as a change, so nothing is translated or dropped silently."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MISSING: Any = object()

TRANSLATED = "translated"
IGNORED = "ignored"


@dataclass(frozen=True)
class Change:
    """One key of the old file: ``translated`` to ``to`` (how, in ``note``), or ``ignored`` (why)."""

    kind: str
    key: str
    to: str | None
    note: str

    def line(self) -> str:
        if self.kind == TRANSLATED:
            target = f" -> {self.to}" if self.to and self.to != self.key else ""
            return f"translated {self.key}{target}" + (f" ({self.note})" if self.note else "")
        return f"ignored    {self.key}: {self.note}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "to": self.to, "note": self.note}


class Editor:
    """A copy of the document being rewritten, and the changes made to it."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = copy.deepcopy(doc)
        self.changes: list[Change] = []

    def _parent(self, path: str, create: bool) -> tuple[dict[str, Any] | None, str]:
        *parents, last = path.split(".")
        node: Any = self.doc
        for part in parents:
            child = node.get(part, MISSING) if isinstance(node, dict) else MISSING
            if child is MISSING:
                if not create:
                    return None, last
                child = node[part] = {}
            if not isinstance(child, dict):
                return None, last
            node = child
        return (node if isinstance(node, dict) else None), last

    def get(self, path: str, default: Any = MISSING) -> Any:
        parent, last = self._parent(path, create=False)
        return parent.get(last, default) if parent is not None else default

    def has(self, path: str) -> bool:
        return self.get(path) is not MISSING

    def pop(self, path: str) -> Any:
        parent, last = self._parent(path, create=False)
        return parent.pop(last, MISSING) if parent is not None else MISSING

    def put(self, path: str, value: Any) -> None:
        """Sets ``path``; a dict is merged into a dict already there (the keys already there win)."""
        parent, last = self._parent(path, create=True)
        if parent is None:
            return
        old = parent.get(last, MISSING)
        if isinstance(old, dict) and isinstance(value, dict):
            parent[last] = {**value, **old}
        elif old is MISSING:
            parent[last] = value

    def translated(self, key: str, to: str | None, note: str = "") -> None:
        self.changes.append(Change(TRANSLATED, key, to, note))

    def ignored(self, key: str, reason: str) -> None:
        self.changes.append(Change(IGNORED, key, None, reason))

    def move(self, old: str, new: str, convert: Callable[[Any], Any] | None = None, note: str = "") -> bool:
        """``old`` -> ``new`` (its value converted); False when the file has no ``old``."""
        value = self.pop(old)
        if value is MISSING:
            return False
        there = self.get(new)
        if there is not MISSING and not (isinstance(there, dict) and isinstance(value, dict)):
            self.ignored(old, f"{new} is set too; its value is kept")
            return True
        self.put(new, convert(value) if convert else value)
        self.translated(old, new, note)
        return True

    def drop(self, path: str, reason: str) -> bool:
        """Removes ``path`` and reports it as ignored; False when absent."""
        if self.pop(path) is MISSING:
            return False
        self.ignored(path, reason)
        return True

    def drop_rest(self, path: str, reason: str) -> None:
        """Every key left under ``path`` is reported ignored (one line each) and the section removed."""
        value = self.pop(path)
        if isinstance(value, dict) and value:
            for key in value:
                self.ignored(f"{path}.{key}", reason)
        elif value is not MISSING and value != {}:
            self.ignored(path, reason)
