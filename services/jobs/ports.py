"""Visdom ports from a fixed range, handed out under a lock so two jobs never get the same one.

A port is given only if it is not held by a job here and a test bind on 127.0.0.1 succeeds (another
program may use it). It stays held until ``release``; the caller retries with another port if the
server still fails to bind (the bind check cannot close every race with foreign programs).
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterable


class PortsExhausted(RuntimeError):
    pass


def can_bind(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server will (tornado does): a port in TIME_WAIT after a viewer was shut is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortPool:
    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self._held: set[int] = set()
        self._lock = threading.Lock()

    def hold(self, ports: Iterable[int]) -> None:
        """Mark ports as taken without checking them (processes adopted after a restart)."""
        with self._lock:
            self._held.update(ports)

    def _first_free(self, skip: set[int]) -> int:
        """Call with the lock held."""
        for port in range(self.first, self.last + 1):
            if port not in self._held and port not in skip and can_bind(port):
                return port
        raise PortsExhausted(f"no free port in {self.first}-{self.last}")

    def allocate(self, avoid: Iterable[int] = ()) -> int:
        with self._lock:
            port = self._first_free(set(avoid))
            self._held.add(port)
            return port

    def first_free(self) -> int:
        """The port ``allocate`` would give now, without holding it (the legacy ``free_port``)."""
        with self._lock:
            return self._first_free(set())

    def release(self, port: int | None) -> None:
        with self._lock:
            self._held.discard(port)

    def is_free(self, port: int) -> bool:
        with self._lock:
            return self.first <= port <= self.last and port not in self._held

    def free_count(self) -> int:
        with self._lock:
            return self.last - self.first + 1 - len(self._held)
