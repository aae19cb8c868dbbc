"""What a version holds, as one hash: sha256 over the sorted manifest of its files (path, size, sha256).

The same bytes in the same paths give the same hash whether they came from a zip, a tar.gz or a
registered folder, so a version's hash names its content, not how it arrived.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cauchy.files import sha256_file


class ContentError(ValueError):
    """A folder that cannot be a version: too many files, too large, or holding something not a file."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, with "/" separators
    size: int
    sha256: str


@dataclass(frozen=True)
class Content:
    files: int
    size: int
    sha256: str


def manifest_line(entry: FileEntry) -> str:
    return f"{entry.sha256}  {entry.size}  {entry.path}\n"


def summarise(entries: list[FileEntry]) -> Content:
    """The version's hash over ``entries`` sorted by path."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.path):
        digest.update(manifest_line(entry).encode("utf-8", "surrogateescape"))
    return Content(len(entries), sum(e.size for e in entries), digest.hexdigest())


def walk(root: Path, max_files: int, max_bytes: int) -> list[FileEntry]:
    """Every regular file under ``root`` with its hash; symbolic links are not followed, and one that
    would be read (a file or folder of the dataset) is refused, as are sockets, devices and pipes."""
    entries: list[FileEntry] = []
    total = 0
    for folder, dirs, names in os.walk(root):
        for name in sorted(dirs + names):
            path = Path(folder) / name
            mode = os.lstat(path).st_mode
            rel = path.relative_to(root).as_posix()
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise ContentError(f"{rel}: not a regular file or folder (a link, device, socket or pipe)")
            size = os.lstat(path).st_size
            total += size
            if len(entries) >= max_files:
                raise ContentError(f"more than {max_files} files (setting CAUCHY_DATASET_MAX_FILES)")
            if total > max_bytes:
                raise ContentError(f"more than {max_bytes} bytes (setting CAUCHY_DATASET_MAX_UNPACKED_MB, or your quota)")
            entries.append(FileEntry(rel, size, sha256_file(path)))
    return entries
