"""A small in-memory sliding-window rate limiter, keyed by any string (a user name, an address).

One process serves the API, so counting in memory is enough; a restart forgets the counts. Used for
failed sign-ins (per name and per address) and reusable for other per-key limits.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` events per key in any ``window_s`` seconds.

    ``retry_after(key)`` says how long until one more event would be allowed (0: now) without
    counting one; ``hit(key)`` counts one when allowed and returns the same figure; ``record(key)``
    counts one unconditionally (e.g. a failed sign-in); ``reset(key)`` forgets the key. At most
    ``max_keys`` keys are remembered: the least recently used are dropped first.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"a rate limit needs limit >= 1 and window_s > 0, got {limit} and {window_s}")
        self.limit, self.window_s, self.clock, self.max_keys = limit, window_s, clock, max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.pop(key, None) or deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        self._events[key] = events  # re-inserted: dicts keep insertion order, oldest first
        if len(self._events) > self.max_keys:
            del self._events[next(iter(self._events))]
        return events

    def _wait(self, events: deque[float], now: float) -> float:
        return 0.0 if len(events) < self.limit else max(events[0] + self.window_s - now, 0.0) or 1e-3

    def retry_after(self, key: str) -> float:
        with self._lock:
            now = self.clock()
            return self._wait(self._recent(key, now), now)

    def hit(self, key: str) -> float:
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            wait = self._wait(events, now)
            if not wait:
                events.append(now)
            return wait

    def record(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(key, now).append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)
