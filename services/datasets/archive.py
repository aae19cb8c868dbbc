"""Unpack an uploaded zip, tar or tar.gz as if it were hostile (it may be).

Refused, with a message naming the entry: a path that would land outside the target (``../``, an
absolute path, a drive letter), a symbolic or hard link, a device, pipe or anything not a file or a
folder, an entry named twice. Capped while writing, not only by what the archive declares: the bytes
written (a zip bomb stops at the cap, having written at most that much), the number of files, and
the compression ratio of each entry and of the whole. Every file is hashed as it is written
(``services.datasets.content``). Runs in the worker process (``services.datasets.worker``).
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from services.datasets.content import FileEntry

CHUNK = 1 << 20
READ_ONLY = 0o400  # a version's files are never changed (the folders stay 0700, so it can be deleted)
SKIPPED_FOLDER = "__MACOSX"  # what macOS adds to a zip it makes; never part of a dataset


class ArchiveRefused(ValueError):
    """The archive is not unpacked: the message says which entry and why, or which cap it passed."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int  # written in all
    max_files: int
    max_ratio: int  # unpacked bytes per archive byte


@dataclass(frozen=True)
class Member:
    """One entry, whatever the archive kind: its name, whether it is a folder, and how to read it."""

    name: str
    is_dir: bool
    declared_size: int
    compressed_size: int | None  # zip only


def archive_kind(path: Path) -> str:
    """``zip``, ``tar.gz`` or ``tar`` from the file's first bytes (its name may say anything)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    raise ArchiveRefused("not a zip, tar or tar.gz archive (its first bytes are none of theirs)")


def safe_name(name: str) -> str | None:
    """``name`` as a relative POSIX path inside the target, or None for the archive's root; refused if
    it would land anywhere else."""
    if "\\" in name or "\x00" in name:
        raise ArchiveRefused(f"{name!r}: backslashes and NUL are not allowed in entry names")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRefused(f"{name!r}: an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveRefused(f"{name!r}: escapes the target folder (..)")
    return posixpath.join(*parts) if parts else None


class Writer:
    """Writes entries under ``target`` within ``limits``, hashing each; the caps count what is written."""

    def __init__(self, target: Path, limits: Limits, archive_size: int) -> None:
        self.target, self.limits, self.archive_size = target, limits, max(1, archive_size)
        self.entries: list[FileEntry] = []
        self.seen: set[str] = set()
        self.written = 0

    def folder(self, rel: str) -> None:
        (self.target / rel).mkdir(parents=True, exist_ok=True, mode=0o700)

    def file(self, rel: str, source: IO[bytes], compressed_size: int | None) -> None:
        if rel in self.seen:
            raise ArchiveRefused(f"{rel!r} appears twice in the archive")
        self.seen.add(rel)
        if len(self.entries) >= self.limits.max_files:
            raise ArchiveRefused(f"more than {self.limits.max_files} files (setting CAUCHY_DATASET_MAX_FILES)")
        path = self.target / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, READ_ONLY)
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            while block := source.read(CHUNK):
                size += len(block)
                self.written += len(block)
                self._check(rel, size, compressed_size)
                digest.update(block)
                out.write(block)
        self.entries.append(FileEntry(rel, size, digest.hexdigest()))

    def _check(self, rel: str, size: int, compressed_size: int | None) -> None:
        cap, ratio = self.limits.max_bytes, self.limits.max_ratio
        if self.written > cap:
            raise ArchiveRefused(f"unpacks to more than {cap} bytes (setting CAUCHY_DATASET_MAX_UNPACKED_MB, or "
                                 f"your quota); stopped at {rel!r}")
        if compressed_size is not None and size > ratio * max(compressed_size, CHUNK):
            raise ArchiveRefused(f"{rel!r} expands more than {ratio} times (setting CAUCHY_DATASET_MAX_RATIO): "
                                 "a compression bomb?")
        if self.written > ratio * max(self.archive_size, CHUNK):
            raise ArchiveRefused(f"the archive expands more than {ratio} times (setting CAUCHY_DATASET_MAX_RATIO): "
                                 "a compression bomb?")


def zip_members(archive: zipfile.ZipFile) -> Iterator[tuple[Member, zipfile.ZipInfo]]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a file or a folder"
            raise ArchiveRefused(f"{info.filename!r}: {what}")
        yield Member(info.filename, info.is_dir(), info.file_size, info.compress_size), info


def tar_members(archive: tarfile.TarFile) -> Iterator[tuple[Member, tarfile.TarInfo]]:
    for info in archive:
        if info.issym() or info.islnk():
            raise ArchiveRefused(f"{info.name!r}: a {'symbolic' if info.issym() else 'hard'} link")
        if not (info.isreg() or info.isdir()):
            raise ArchiveRefused(f"{info.name!r}: not a file or a folder (a device, a pipe or another special entry)")
        yield Member(info.name, info.isdir(), info.size, None), info


def unpack(archive_path: Path, target: Path, limits: Limits) -> list[FileEntry]:
    """Unpack into ``target`` (created; must not exist). On refusal ``target`` is left for the caller to
    remove, holding at most ``limits.max_bytes`` bytes."""
    kind = archive_kind(archive_path)
    target.mkdir(mode=0o700)
    writer = Writer(target, limits, archive_path.stat().st_size)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive_path) as archive:
                declared = len(archive.infolist())
                if declared > limits.max_files * 2:  # folders count too, but not that many
                    raise ArchiveRefused(f"{declared} entries, more than {limits.max_files} files "
                                         "(setting CAUCHY_DATASET_MAX_FILES)")
                for member, info in zip_members(archive):
                    _one(writer, member, lambda info=info: archive.open(info))
        else:
            with tarfile.open(archive_path, "r:gz" if kind == "tar.gz" else "r:") as archive:
                for member, info in tar_members(archive):
                    _one(writer, member, lambda info=info: archive.extractfile(info))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveRefused(f"the archive is truncated or corrupt ({kind}): {exc}") from None
    except OSError as exc:  # a file where the archive has a folder of the same name, say
        raise ArchiveRefused(f"cannot unpack: {exc.strerror}: {Path(exc.filename or '').name!r}") from None
    return writer.entries


def _one(writer: Writer, member: Member, open_member) -> None:
    rel = safe_name(member.name)
    if rel is None or rel.split("/")[0] == SKIPPED_FOLDER:
        return
    if member.is_dir:
        writer.folder(rel)
        return
    with open_member() as source:
        writer.file(rel, source, member.compressed_size)
