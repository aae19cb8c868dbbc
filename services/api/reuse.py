"""Response bodies reused while the database is unchanged (``Store.data_version``).

A list of jobs is a function of the database and of what was asked (filters, page, the caller's read rule):
16 clients polling the same page made the service run the same two queries and encode the same JSON for
each, and stepping through SQLite's rows hands the interpreter lock to another thread at every row. A body
is kept under the data version read *before* its query and served only to a request that reads the same
version: any commit since (a submission, a state change, another process's write) changes the version and
the next request queries again, so a reused body is never older than the database was at that request's
start.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

MAX_BODIES = 64  # different requests kept per version (a page is at most MAX_PAGE jobs)


class Bodies:
    """Bodies of one version of the database; a request that reads another version starts a new set."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._bodies: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()

    def body(self, version: int | None, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The body for ``key`` as of ``version`` (read before), built by ``build`` unless already kept."""
        if version is None:
            return build()
        with self._lock:
            kept = self._bodies.get(key) if version == self._version else None
        if kept is not None:
            return kept
        built = build()
        with self._lock:
            if version != self._version:
                self._version, self._bodies = version, {}
            if len(self._bodies) < MAX_BODIES:
                self._bodies[key] = built
        return built
