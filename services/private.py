"""The service's files are for its own user: ``$CAUCHY_HOME`` and ``jobs/`` are 0700; the database (with
its ``-wal``/``-shm``), logs, metrics and hypes are 0600. Modes are set where each file is created, not
left to the umask of whoever started the service; job processes run with umask 077 themselves."""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) created, and ``path`` itself made 0700 even if it existed."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def open_private(path: Path) -> IO[bytes]:
    """``path`` opened for appending, created 0600 (a log the service hands to a process)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE), "ab")


def private_sqlite(url: str) -> None:
    """Create a SQLite database file 0600 before SQLite does (its ``-wal``/``-shm`` copy the file's mode),
    and tighten the files of an existing one. Other databases: nothing to do."""
    from sqlalchemy.engine import make_url  # here: Visdom's process imports this module and needs no SQLAlchemy

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    database = Path(parsed.database)
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    for suffix in SQLITE_SIDE_FILES:
        side = database.with_name(database.name + suffix)
        if side.exists():
            os.chmod(side, PRIVATE_FILE)
