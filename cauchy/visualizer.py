"""Where training events go: metrics.jsonl (the durable record) and, optionally, Visdom (live view).

An event is one flat dict: ``{"step", "epoch", "phase", "name", "value", "time"}``.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Iterable, Protocol


class Sink(Protocol):
    def write(self, event: dict[str, Any]) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def make_event(name: str, value: float, *, step: int, epoch: float, phase: str) -> dict[str, Any]:
    return {"step": step, "epoch": epoch, "phase": phase, "name": name, "value": value, "time": time.time()}


class JsonlSink:
    """Appends one JSON line per event; flushed at each ``flush()`` so readers see whole lines."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")

    def write(self, event: dict[str, Any]) -> None:
        self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class MultiSink:
    """Fans events out to several sinks."""

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks = list(sinks)

    def write(self, event: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.write(event)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def read_events(path: str) -> list[dict[str, Any]]:
    """All whole lines of a metrics.jsonl (a line still being written is ignored)."""
    events = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.endswith("\n"):
                events.append(json.loads(line))
    return events


def build_sinks(run_dir: str, viz_port: int | None = None, viz_base_url: str = "") -> MultiSink:
    sinks: list[Sink] = [JsonlSink(os.path.join(run_dir, "metrics.jsonl"))]
    return MultiSink(sinks)
