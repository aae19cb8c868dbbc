"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries (installed by
``scripts/system_packages.sh``), a private data directory, a Unix socket only, no password."""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text


class Cluster:
    """``start()``, then ``new_database()`` for each test (an empty database's SQLAlchemy URL), ``stop()``."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL's server is not installed: run scripts/system_packages.sh")
        self.bin = Path(found[-1]).parent
        # Not under pytest's 0700 temporary directory: the server runs as the postgres user when we are root.
        self.root = Path(tempfile.mkdtemp(prefix="cauchy-pg-"))
        self.as_owner: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            shutil.chown(self.root, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self._names = itertools.count()
        self._admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}"

    def _run(self, *command: str | Path) -> None:
        done = subprocess.run([*self.as_owner, *map(str, command)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        data = self.root / "data"
        self._run(self.bin / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        self._run(self.bin / "pg_ctl", "-D", data, "-l", self.root / "server.log", "-w", "-t", "60", "start",
                  "-o", f"-k {self.root} -c listen_addresses='' -F")

    def new_database(self) -> str:
        name = f"cauchy_{next(self._names)}"
        with self._admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        return self.url(name)

    def stop(self) -> None:
        self._admin.dispose()
        try:
            self._run(self.bin / "pg_ctl", "-D", self.root / "data", "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
