"""Users' recent usage for fair share: decayed GPU-seconds and CPU-slot-seconds and the last start, kept in
the database (``store.UserUsage``) so a restart of the service forgets nothing."""
from __future__ import annotations

import threading
from collections.abc import Mapping

from services.jobs.policies.base import Usage, decayed
from services.jobs.store import Store

SAVE_EVERY_S = 2.0  # usage is written at most this often (and at every start and at shutdown)


class UsageBook:
    def __init__(self, store: Store, half_life_s: float) -> None:
        self.store, self.half_life_s = store, half_life_s
        self._rows: dict[str, dict[str, float | None]] = {}
        self._dirty: set[str] = set()
        self._saved_at = 0.0
        self._lock = threading.Lock()
        for row in store.usage():
            self._rows[row.user] = {"gpu_seconds": row.gpu_seconds, "cpu_seconds": row.cpu_seconds,
                                    "updated_at": row.updated_at, "last_start": row.last_start}

    def _row(self, user: str, now: float) -> dict[str, float | None]:
        return self._rows.setdefault(user, {"gpu_seconds": 0.0, "cpu_seconds": 0.0, "updated_at": now,
                                            "last_start": None})

    def advance(self, now: float, held: Mapping[tuple[str, str], int]) -> None:
        """Charge what each user held since their row's time: ``held[(kind, user)]`` units (GPUs or CPU slots)."""
        with self._lock:
            users = {user for _, user in held}
            for user in users:
                row = self._row(user, now)
                dt = max(now - row["updated_at"], 0.0)
                for kind in ("gpu", "cpu"):
                    key = f"{kind}_seconds"
                    row[key] = decayed(row[key], held.get((kind, user), 0), dt, self.half_life_s)
                row["updated_at"] = now
                self._dirty.add(user)
            if now - self._saved_at >= SAVE_EVERY_S:
                self._save(now)

    def started(self, user: str, now: float) -> None:
        with self._lock:
            self._row(user, now)["last_start"] = now
            self._dirty.add(user)
            self._save(now)

    def snapshot(self, now: float) -> Usage:
        """Every user's usage decayed to ``now``, as the policies read it."""
        usage = Usage()
        with self._lock:
            for user, row in self._rows.items():
                dt = max(now - row["updated_at"], 0.0)
                usage.gpu_seconds[user] = decayed(row["gpu_seconds"], 0, dt, self.half_life_s)
                usage.cpu_seconds[user] = decayed(row["cpu_seconds"], 0, dt, self.half_life_s)
                if row["last_start"] is not None:
                    usage.last_start[user] = row["last_start"]
        return usage

    def save(self, now: float) -> None:
        with self._lock:
            self._save(now)

    def _save(self, now: float) -> None:
        if self._dirty:
            self.store.save_usage([{"user": user, **self._rows[user]} for user in sorted(self._dirty)])
            self._dirty.clear()
        self._saved_at = now
