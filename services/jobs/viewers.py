"""Each job's Visdom viewer and the port range they share: started beside the task, kept for a while after the
job's end (the linger), shut when idle or when a new job needs the port, started again from the saved env
when someone opens the charts. Thread-safe: the supervisor's thread and API requests both call in."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from services.config import Settings
from services.jobs import files
from services.jobs.ports import PortPool, PortsExhausted
from services.jobs.procs import Proc
from services.jobs.store import Job, Store
from services.visdom_server import VisdomStartError, is_visdom_up, start_visdom

log = logging.getLogger(__name__)
VISDOM_ATTEMPTS = 3
VIEWER_STARTERS = 4  # viewers of running jobs starting at once, in the background


def visdom_base_url(job_id: int) -> str:
    return f"/visdom/{job_id}"


@dataclass
class Viewer:
    port: int
    proc: Proc
    until: float | None = None  # None while the job runs


class Viewers:
    def __init__(self, settings: Settings, store: Store, on_failure: Callable[[], None] = lambda: None) -> None:
        self.settings, self.store = settings, store
        self.ports = PortPool(*settings.visdom_ports)
        self._viewers: dict[int, Viewer] = {}
        self._lock = threading.RLock()
        # Running jobs' viewers start in the background (``open_soon``): the scheduling thread never waits.
        self._pool = ThreadPoolExecutor(VIEWER_STARTERS, thread_name_prefix="cauchy-viewer")
        self._starting: dict[int, Future[None]] = {}
        self._failed: dict[int, tuple[int, str]] = {}  # job id -> (port, why) of a viewer that did not start
        self._on_failure = on_failure

    def job_dir(self, job_id: int) -> Path:
        return files.job_dir(self.settings.jobs_dir, job_id)

    # ----- what others read

    def get(self, job_id: int) -> Viewer | None:
        with self._lock:
            return self._viewers.get(job_id)

    def items(self) -> list[tuple[int, Viewer]]:
        """A snapshot of (job id, viewer)."""
        with self._lock:
            return list(self._viewers.items())

    def ports_for_jobs(self) -> int:
        """Ports a new job can get: the free ones plus those of ended jobs' viewers, which give theirs up."""
        with self._lock:
            return self.ports.free_count() + sum(1 for viewer in self._viewers.values() if viewer.until is not None)

    def status(self, job_id: int) -> dict[str, Any]:
        viewer = self.get(job_id)
        base = visdom_base_url(job_id)
        if viewer is None:
            return {"url": base + "/", "port": None, "up": False}
        return {"url": base + "/", "port": viewer.port, "direct_url": f"http://127.0.0.1:{viewer.port}{base}/",
                "up": is_visdom_up(viewer.port, base, timeout=1.0), "until": viewer.until}

    def processes(self, job_id: int) -> list[dict[str, Any]]:
        viewer = self.get(job_id)
        stats = []
        for ps in viewer.proc.tree() if viewer else []:
            try:
                stats.append({"role": "visdom", "pid": ps.pid, "cpu_percent": None,
                              "rss_mb": round(ps.memory_info().rss / 2**20, 1)})
            except psutil.Error:
                continue
        return stats

    # ----- life of a viewer

    def adopt(self, job: Job, until: float | None) -> None:
        """Take over a viewer a previous service started, if it still runs."""
        proc = Proc.adopt(job.visdom_pid, job.visdom_started)
        if proc is None:
            self.store.update(job.id, visdom_pid=None, visdom_started=None, visdom_port=None)
            return
        with self._lock:
            self.ports.hold([job.visdom_port])
            self._viewers[job.id] = Viewer(job.visdom_port, proc, until)
        log.info("job %d: adopted its viewer on port %d", job.id, job.visdom_port)

    def allocate_port(self, avoid: Sequence[int] = ()) -> int:
        """A port from the pool; when all are taken, the viewer of the job that ended first gives its own."""
        with self._lock:
            while True:
                try:
                    return self.ports.allocate(avoid)
                except PortsExhausted:
                    idle = [(viewer.until, job_id) for job_id, viewer in self._viewers.items()
                            if viewer.until is not None]
                    if not idle:
                        raise
                    self.stop(min(idle)[1])

    def open(self, job_id: int, port: int, until: float | None) -> Viewer:
        """Start the job's Visdom on ``port`` (already allocated) over its env directory."""
        directory = self.job_dir(job_id)
        popen = start_visdom(port, visdom_base_url(job_id), str(directory / files.VISDOM_ENV_DIR),
                             str(directory / files.LOGS["visdom"]))
        viewer = Viewer(port, Proc.from_popen(popen), until)
        with self._lock:
            self._viewers[job_id] = viewer
        self.store.update(job_id, visdom_pid=viewer.proc.pid, visdom_started=viewer.proc.started,
                          visdom_port=port, visdom_until=until)
        log.info("job %d: viewer started on port %d", job_id, port)
        return viewer

    def open_soon(self, job_id: int, port: int) -> None:
        """Start a running job's Visdom on ``port`` (already allocated) in the background. A viewer that does not
        start is reported by ``failures`` (and ``on_failure`` is called): its port stays taken until the
        supervisor has stopped the task that plots to it."""
        with self._lock:
            self._starting[job_id] = self._pool.submit(self._open_running, job_id, port)

    def _open_running(self, job_id: int, port: int) -> None:
        try:
            self.open(job_id, port, None)
        except (VisdomStartError, OSError) as exc:
            with self._lock:
                self._failed[job_id] = (port, str(exc))
            log.warning("job %d: its viewer did not start on port %d: %s", job_id, port, exc)
            self._on_failure()
        finally:
            with self._lock:
                del self._starting[job_id]

    def failures(self) -> dict[int, tuple[int, str]]:
        """Viewers that did not start since the last call: job id -> (its port, why)."""
        with self._lock:
            failed, self._failed = self._failed, {}
        return failed

    def settle(self, job_id: int) -> None:
        """Wait for the job's viewer if it is still starting (never with the lock held: the start takes it);
        a job that ends before its viewer is up has its end recorded after that (the viewer then lingers)."""
        with self._lock:
            future = self._starting.get(job_id)
        if future is not None:
            wait([future])

    def release_port(self, port: int) -> None:
        self.ports.release(port)

    def _start(self, job_id: int, until: float) -> Viewer:
        """Start an ended job's Visdom on a fresh port, retrying on a port a foreign program grabbed."""
        tried: list[int] = []
        for attempt in range(VISDOM_ATTEMPTS):
            port = self.allocate_port(tried)
            try:
                return self.open(job_id, port, until)
            except VisdomStartError:
                self.ports.release(port)
                tried.append(port)
                if attempt == VISDOM_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self, job_id: int) -> None:
        """End the viewer and free its port; it stays listed until both are done (its port is not free before)."""
        self.settle(job_id)
        with self._lock:
            viewer = self._viewers.get(job_id)
            if viewer is None:
                return
            viewer.proc.terminate_group()
            self.ports.release(viewer.port)
            del self._viewers[job_id]
        self.store.update(job_id, visdom_pid=None, visdom_started=None, visdom_port=None)
        log.info("job %d: viewer on port %d stopped", job_id, viewer.port)

    def linger(self, job_id: int, until: float) -> None:
        """The job ended (or went back to the queue): its viewer stays until ``until``."""
        with self._lock:
            viewer = self._viewers.get(job_id)
            if viewer is not None:
                viewer.until = until

    def reclaim(self, job_id: int) -> int | None:
        """A requeued job starts again: its lingering viewer, if still up, is its own again (same port, charts
        kept open); the port, or None when there is no live viewer."""
        self.settle(job_id)
        with self._lock:
            viewer = self._viewers.get(job_id)
            if viewer is None or not viewer.proc.alive():
                return None
            viewer.until = None
        self.store.update(job_id, visdom_until=None)
        return viewer.port

    def close_idle(self) -> None:
        now = time.time()
        for job_id, viewer in self.items():
            if (viewer.until is not None and viewer.until < now) or not viewer.proc.alive():
                self.stop(job_id)

    def ensure(self, job_id: int) -> Viewer:
        """The job's Visdom, started again from its saved env if it was shut down (charts opened)."""
        self.settle(job_id)
        with self._lock:
            viewer = self._viewers.get(job_id)
            if viewer is not None and viewer.proc.alive():
                if viewer.until is not None:
                    viewer.until = max(viewer.until, time.time() + self.settings.visdom_linger_s)
                    self.store.update(job_id, visdom_until=viewer.until)
                return viewer
            self.stop(job_id)
            return self._start(job_id, until=time.time() + self.settings.visdom_linger_s)

    def shut(self, job_id: int) -> bool:
        """Shut an ended job's viewer now; a running job keeps its own (the task writes to it)."""
        with self._lock:
            viewer = self._viewers.get(job_id)
            if viewer is None or viewer.until is None:
                return False
            self.stop(job_id)
            return True

    def settle_all(self) -> None:
        """Wait for every viewer still starting."""
        with self._lock:
            starting = list(self._starting.values())
        wait(starting)

    def terminate_all(self) -> None:
        """End every viewer (tests leave nothing behind)."""
        self.settle_all()
        for _, viewer in self.items():
            viewer.proc.terminate_group(grace=0.5)
