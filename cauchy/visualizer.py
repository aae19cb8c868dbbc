"""Where training events go: metrics.jsonl (the durable record) and, optionally, Visdom (live view).

An event is one flat dict: ``{"step", "epoch", "phase", "name", "value", "time"}``. Pictures
(validation images with predictions drawn) go to Visdom only: the JSONL record keeps scalars.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from cauchy import rundir
from cauchy.files import atomic_write

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, event: dict[str, Any]) -> None: ...
    def write_image(self, name: str, image: Any, *, step: int, caption: str = "") -> None:
        """Show ``image`` (HxWx3 uint8 RGB) in the window ``name``, replacing what it showed."""
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

    def write_image(self, name: str, image: Any, *, step: int, caption: str = "") -> None:
        """Not recorded: pictures are a live view, and the record must not grow with them."""

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

    def write_image(self, name: str, image: Any, *, step: int, caption: str = "") -> None:
        for sink in self.sinks:
            sink.write_image(name, image, step=step, caption=caption)

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
            if line.endswith("\n") and line.strip():
                events.append(json.loads(line))
    return events


PLOTTED_TRAIN = frozenset({"loss", "lr", "images_per_s"})
NOT_PLOTTED = frozenset({"max_iters", "progress", "eta_s", "count"})  # bookkeeping and constants (images evaluated)
PANE = {"width": 300, "height": 250}  # three panes a row, two rows in the job page's frame


def is_plotted(event: dict[str, Any]) -> bool:
    """Train losses, lr and speed, and every evaluation metric; bookkeeping stays in the JSONL."""
    name = event["name"]
    if event["phase"] == "train":
        return name in PLOTTED_TRAIN or name.startswith("loss_")
    return name not in NOT_PLOTTED


class BoundedSeries:
    """One trace of at most ``max_points`` points, so a Visdom append stays cheap (it re-serialises
    the whole window: 17 ms at 1,000 points). When full, neighbours are averaged in pairs and later
    points are averaged over buckets twice as long: a long run keeps its shape at lower resolution.
    """

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points - max_points % 2
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.stride = 1
        self.bucket: list[tuple[float, float]] = []
        self.sent = 0  # points already on the server
        self.generation = 0  # bumped when the points are rewritten, which makes ``sent`` stale

    def add(self, x: float, y: float) -> bool:
        """Adds a point; True when the points were halved and the trace must be redrawn."""
        self.bucket.append((x, y))
        if len(self.bucket) < self.stride:
            return False
        self._seal()
        if len(self.xs) < self.max_points:
            return False
        self.xs = self.xs[1::2]
        self.ys = [(a + b) / 2 for a, b in zip(self.ys[::2], self.ys[1::2])]
        self.stride *= 2
        self.sent = 0
        self.generation += 1
        return True

    def seal(self) -> None:
        """Turns a partly filled bucket into a point (at close, so the last steps show)."""
        if self.bucket:
            self._seal()

    def _seal(self) -> None:
        self.xs.append(self.bucket[-1][0])
        self.ys.append(sum(y for _, y in self.bucket) / len(self.bucket))
        self.bucket.clear()


class VisdomSink:
    """Live plots of the events in the job's Visdom: one window per name, one trace per phase.

    ``write`` only buffers; a background thread sends the new points in batches every
    ``interval`` seconds or on ``flush``, and saves the env now and then and on ``close`` (the
    server writes it to disk only then). A slow, hung or absent Visdom never blocks or breaks
    training: the sink warns once and retries with exponential back-off, keeping its bounded
    points to redraw everything when Visdom answers again. ``metrics.jsonl`` stays the record.
    """

    MIN_GAP_S = 0.5  # between two sends, however often flush() is called

    def __init__(self, port: int, base_url: str = "", env: str = "main", *, interval: float = 2.0,
                 save_interval: float = 60.0, max_points: int = 1000, max_backoff: float = 60.0,
                 close_timeout: float = 5.0, first: Sequence[tuple[str, str]] = ()) -> None:
        """``first``: ``(window, phase)`` of the main charts (loss, the headline metric, lr), made before any
        other so Visdom lays them out first, in the top row, even before they have points."""
        import visdom  # here, not at module import: it pulls numpy, PIL and requests in

        # Its logger warns of every new HTTP session and of the socket we do not want.
        logging.getLogger("visdom").setLevel(logging.ERROR)
        self._visdom = visdom
        self.port, self.base_url, self.env = port, base_url.rstrip("/"), env
        self.interval, self.save_interval, self.max_backoff = interval, save_interval, max_backoff
        self.close_timeout, self.max_points = close_timeout, max_points
        self._vis: Any = None
        self._series: dict[tuple[str, str], BoundedSeries] = {}
        self._redraw: set[str] = set()  # windows to draw again from all their points
        self._first = list(first)
        self._created: set[str] = set()  # windows made on the server (with their size)
        self._placeholders: set[str] = set()  # made empty for the layout, drawn whole at their first points
        self._images: dict[str, tuple[Any, str]] = {}  # window -> (latest CHW picture, caption)
        self._unsent_images: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._warned = False
        self._backoff = 0.0
        self._retry_at = 0.0
        self._thread = threading.Thread(target=self._run, name="visdom-sink", daemon=True)
        self._thread.start()

    def write(self, event: dict[str, Any]) -> None:
        if not is_plotted(event):
            return
        try:
            x, y = float(event["step"]), float(event["value"])
        except (TypeError, ValueError):
            return  # not a number: nothing to draw, and the JSONL has it anyway
        key = (event["name"], event["phase"])
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = BoundedSeries(self.max_points)
                self._redraw.add(key[0])
            if series.add(x, y):
                self._redraw.add(key[0])

    def write_image(self, name: str, image: Any, *, step: int, caption: str = "") -> None:
        """Buffers the picture; only the latest per window is kept and sent."""
        import numpy as np

        chw = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
        with self._lock:
            self._images[name] = (chw, f"{caption} (step {step})" if caption else f"step {step}")
            self._unsent_images.add(name)

    def flush(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Sends the rest and saves the env, waiting at most ``close_timeout`` seconds."""
        if self._stop.is_set():
            return
        with self._lock:
            for series in self._series.values():
                series.seal()
        self._stop.set()
        self._wake.set()
        self._thread.join(self.close_timeout)

    def _run(self) -> None:
        last_save = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set() or time.monotonic() < self._retry_at:
                continue
            save = time.monotonic() - last_save >= self.save_interval
            if self._attempt(save) and save:
                last_save = time.monotonic()
            self._stop.wait(self.MIN_GAP_S)
        self._attempt(save=True)

    def _attempt(self, save: bool) -> bool:
        """One send (and save); on failure: warn once, back off, redraw all once it answers."""
        try:
            self._send(save)
        except Exception as exc:
            self._backoff = min(max(2 * self._backoff, 1.0), self.max_backoff)
            self._retry_at = time.monotonic() + self._backoff
            with self._lock:
                self._redraw.update(name for name, _ in self._series)
                self._unsent_images.update(self._images)
                self._created.clear()  # a new server: the main windows are made first again
            if not self._warned:
                self._warned = True
                log.warning("Visdom at 127.0.0.1:%d%s is unreachable (%s); plots paused, retrying "
                            "with back-off; metrics.jsonl still records every event",
                            self.port, self.base_url, exc)
            return False
        if self._backoff:
            log.info("Visdom at 127.0.0.1:%d%s answers again; plots redrawn", self.port, self.base_url)
            self._backoff = 0.0
        return True

    def _send(self, save: bool) -> None:
        vis = self._vis or self._connect()
        for name, phase in self._first:
            if name not in self._created:
                vis.line(Y=[0.0], X=[0.0], win=name, env=self.env, name=phase,  # one point draws no line
                         opts={"title": name, "xlabel": "step", "legend": [phase], **PANE})
                with self._lock:
                    self._created.add(name)
                    self._placeholders.add(name)
        for name, phase, generation, end, xs, ys, create in self._plan():
            self._plot(vis, name, phase, xs, ys, create)
            with self._lock:
                series = self._series[(name, phase)]
                if series.generation == generation:
                    series.sent = end
        with self._lock:
            pictures = [(name, *self._images[name]) for name in sorted(self._unsent_images)]
            self._unsent_images.clear()
        for name, chw, caption in pictures:
            vis.image(chw, win=name, env=self.env, opts={"title": name, "caption": caption, "jpgquality": 85})
        if save and (self._series or self._images):
            vis.save([self.env])

    def _plan(self) -> list[tuple[str, str, int, int, list[float], list[float], bool]]:
        """The points to send: the new ones, or all of a window's traces when it is redrawn,
        the first of them recreating the window."""
        plan = []
        with self._lock:
            redraw, self._redraw = self._redraw, set()
            for (name, phase), series in self._series.items():
                whole = name in redraw or name in self._placeholders
                start = 0 if whole else series.sent
                if len(series.xs) > start:
                    create = (whole or name not in self._created) and not any(p[0] == name for p in plan)
                    plan.append((name, phase, series.generation, len(series.xs),
                                 series.xs[start:], series.ys[start:], create))
        return plan

    def _plot(self, vis: Any, name: str, phase: str, xs: list[float], ys: list[float], create: bool) -> None:
        import numpy as np

        x, y = np.asarray(xs), np.asarray(ys)
        if create:
            vis.line(Y=y, X=x, win=name, env=self.env,
                     opts={"title": name, "xlabel": "step", "legend": [phase], **PANE})
            with self._lock:
                self._created.add(name)
                self._placeholders.discard(name)
        else:
            vis.line(Y=y, X=x, win=name, env=self.env, name=phase, update="append")

    def _connect(self) -> Any:
        self._vis = self._visdom.Visdom(server="http://127.0.0.1", port=self.port,
                                        base_url=self.base_url, env=self.env,
                                        use_incoming_socket=False, raise_exceptions=True)
        return self._vis


def build_sinks(run_dir: str, viz_port: int | None = None, viz_base_url: str = "",
                resumed_at: int | None = None, main_metric: str | None = None) -> MultiSink:
    """metrics.jsonl always; the job's Visdom too when the service gave a port.

    A run resumed at iteration ``resumed_at`` first drops the recorded events past it (they are
    trained again; the service copies the continued job's metrics.jsonl into a resumed job's directory),
    then replays the rest into Visdom, so metrics and plots show the whole training run once (the
    sink redraws its windows, replacing what the env held).
    """
    metrics = os.path.join(run_dir, rundir.METRICS)
    if resumed_at is not None and os.path.exists(metrics):
        kept = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in read_events(metrics) if e["step"] <= resumed_at)
        atomic_write(metrics, lambda fh: fh.write(kept.encode("utf-8")))
    sinks: list[Sink] = [JsonlSink(metrics)]  # creates the file; nothing is written to it yet
    if viz_port:
        first = [("loss", "train"), *([(main_metric, "val")] if main_metric else []), ("lr", "train")]
        visdom_sink = VisdomSink(viz_port, viz_base_url, first=first)
        for event in read_events(metrics):
            visdom_sink.write(event)
        sinks.append(visdom_sink)
    return MultiSink(sinks)
