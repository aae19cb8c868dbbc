"""The moment a job ends, as an event: requests waiting on a job sleep on it instead of polling, and
listeners (cleanup of a job's inputs) run once per end. The supervisor and the stop route notify."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[int], None]


class Endings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, list[threading.Event]] = {}
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call ``listener(job_id)`` after every job end (from the notifying thread; keep it short)."""
        with self._lock:
            self._listeners.append(listener)

    @contextmanager
    def watch(self, job_id: int) -> Iterator[threading.Event]:
        """An event set when ``job_id`` ends; check the job's state after entering (it may have ended already)."""
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, []).append(event)
        try:
            yield event
        finally:
            with self._lock:
                events = self._waiting.get(job_id, [])
                if event in events:
                    events.remove(event)
                if not events:
                    self._waiting.pop(job_id, None)

    def notify(self, job_id: int) -> None:
        with self._lock:
            events = list(self._waiting.get(job_id, []))
            listeners = list(self._listeners)
        for listener in listeners:  # first, so that a woken request sees their effect
            listener(job_id)
        for event in events:
            event.set()
