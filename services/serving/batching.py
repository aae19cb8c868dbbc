"""Dynamic batching and the figures a replica reports (torch-free: the model is a callable here).

Request threads pre-process their images and ``submit`` the samples; one thread owns the model and
runs what arrived within ``max_wait_s`` of the first waiting sample as one batch of at most
``max_batch``. While a batch runs, the next one gathers, so under load batches fill without waiting.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

LATENCY_SAMPLES = 2048  # the latest request latencies percentiles are taken over


class Batcher:
    """Runs ``model(samples) -> results`` (one result per sample, in order) on batches it gathers."""

    def __init__(self, model: Callable[[list[Any]], list[Any]], max_batch: int, max_wait_s: float,
                 metrics: Metrics) -> None:
        self.model, self.max_batch, self.max_wait_s, self.metrics = model, max_batch, max_wait_s, metrics
        self._queue: queue.SimpleQueue[tuple[Any, Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="cauchy-batcher", daemon=True)
        self._thread.start()

    def submit(self, sample: Any) -> Future:
        future: Future = Future()
        self._queue.put((sample, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def _gather(self, first: tuple[Any, Future]) -> tuple[list[tuple[Any, Future]], bool]:
        """``first`` and what arrives within ``max_wait_s`` of it, up to ``max_batch``; True when told to close."""
        batch, deadline = [first], time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _loop(self) -> None:
        closing = False
        while not closing:
            first = self._queue.get()
            if first is None:
                return
            batch, closing = self._gather(first)
            started = time.monotonic()
            try:
                results = self.model([sample for sample, _ in batch])
            except Exception as exc:  # every waiting request learns it; the batcher goes on
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.metrics.batch(len(batch), time.monotonic() - started)
            for (_, future), result in zip(batch, results):
                future.set_result(result)


class Metrics:
    """Counts, batch sizes and request latencies of one replica, read by ``GET /metrics``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests = self.images = self.errors = self.batches = 0
        self.model_s = 0.0
        self.batch_sizes: Counter[int] = Counter()
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def batch(self, size: int, seconds: float) -> None:
        with self._lock:
            self.batches += 1
            self.batch_sizes[size] += 1
            self.model_s += seconds

    def request(self, images: int, seconds: float, ok: bool) -> None:
        with self._lock:
            self.requests += 1
            self.images += images if ok else 0
            self.errors += 0 if ok else 1
            if ok:
                self.latencies_ms.append(seconds * 1000)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            latencies = list(self.latencies_ms)
            return {"requests": self.requests, "images": self.images, "errors": self.errors,
                    "batches": self.batches, "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                    "mean_batch": round(sum(k * v for k, v in self.batch_sizes.items()) / max(1, self.batches), 3),
                    "model_s": round(self.model_s, 3), "uptime_s": round(time.time() - self.started, 1),
                    "latency_ms": percentiles(latencies), "recent_latencies_ms": [round(v, 2) for v in latencies]}


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 and p99 (nearest rank) of ``values``; None when there are none."""
    if not values:
        return {"p50": None, "p99": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))], 2)

    return {"p50": rank(0.50), "p99": rank(0.99)}
