"""The CLI's small files in the user's home: a JSON object per file, written 0600 and replaced atomically
(the tokens of ``cauchy login``, the unfinished uploads of ``cauchy dataset upload``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from cauchy.files import atomic_write


def user_file(variable: str, default: str, name: str) -> Path:
    """``$variable/cauchy/name``, or ``~/default/cauchy/name`` when the variable is unset (XDG style)."""
    return Path(os.environ.get(variable) or str(Path.home() / default)) / "cauchy" / name


def read_map(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def write_map(path: Path, doc: dict[str, str]) -> Path:
    """Only its user may read it (it may hold a password); a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, lambda fh: fh.write(json.dumps(doc, indent=1).encode("utf-8")), 0o600)
    return path
