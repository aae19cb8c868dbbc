"""Files written whole or not at all, and their sha256: shared by the task and the service (torch-free)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import IO


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object], mode: int | None = None) -> None:
    """``write(fh)`` into a temporary file beside ``path``, fsync, optionally chmod, then rename:
    readers see the old file or the new one, and a crash leaves no half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give the file ``source`` a second name ``path`` at once (a hard link renamed into place); a
    copy where links are not supported. Later atomic writes of either name leave the other intact."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-link-{os.getpid()}-{os.path.basename(path)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a process of the same pid that died between link and rename
    try:
        os.link(source, tmp)
    except OSError:
        with open(source, "rb") as src:
            atomic_write(path, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))
        return
    os.replace(tmp, path)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
