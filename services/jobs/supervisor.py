"""Starts, watches and ends job processes from one background thread inside the service.

Per job: a Visdom viewer and the task (``wrap.py`` around ``run_tasks.py``), each the leader of its
own process group, so one ``killpg`` ends a job with its data-loader workers. The database is the
truth; what is kept here (handles, GPUs and ports in use) is rebuilt from it at start: live
processes are adopted, jobs whose processes vanished end as ``lost``, or with their real outcome
when ``wrap.py`` recorded it.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from cauchy import rundir
from cauchy.hypes import save_hypes
from services.config import Settings
from services.containment import job_environment
from services.jobs import files
from services.jobs.endings import Endings
from services.jobs.environment import JOB_UMASK, scrubbed_environment
from services.jobs.outcome import judge, read_tail
from services.jobs.ports import PortPool, PortsExhausted
from services.jobs.procs import Proc, find_by_argument, kill_leftovers
from services.jobs.scheduler import Capacity, QueuedJob, most_starts, pick
from services.jobs.store import ACTIVE, FAILED, LOST, QUEUED, RUNNING, STOPPED, STOPPING, Job, Store
from services.private import open_private, private_dir
from services.visdom_server import VisdomStartError, is_visdom_up, start_visdom

log = logging.getLogger(__name__)

WRAP_SCRIPT = Path(__file__).with_name("wrap.py")
VISDOM_ATTEMPTS = 3
DISK_CHECK_S = 2.0  # a job directory's size is read this often (a walk of its files)


def visdom_base_url(job_id: int) -> str:
    return f"/visdom/{job_id}"


class Launchable(QueuedJob, Protocol):
    """What starting a job reads (``store.LAUNCH_COLUMNS``; a ``Job`` has it too)."""

    phase: str
    resume_from: str | None
    inputs: str | None


@dataclass
class Running:
    job_id: int
    user: str
    gpus: tuple[str, ...]
    proc: Proc
    term_sent_at: float | None = None
    killed_reason: str | None = None
    disk_checked_at: float = 0.0
    _cache: dict[int, psutil.Process] = field(default_factory=dict, repr=False)


@dataclass
class Viewer:
    port: int
    proc: Proc
    until: float | None = None  # None while the job runs


class Supervisor:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.ports = PortPool(*settings.visdom_ports)
        self.running: dict[int, Running] = {}
        self.viewers: dict[int, Viewer] = {}
        self.last_start: dict[str, float] = {}  # per user, for round-robin at equal priority
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self.endings = Endings()  # wakes requests waiting on a job's end

    # ----- life of the runner thread

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="cauchy-supervisor", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop watching; job processes keep running and are adopted by the next service."""
        self._quit.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._quit.is_set():
            self._wake.wait(self.settings.poll_interval_s)
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # the thread must survive a bad tick (a locked database, a full disk)
                log.exception("supervisor tick failed")

    def tick(self) -> None:
        with self._lock:
            self._watch()
            self._enforce_stops()
            self._close_idle_viewers()
            self._schedule()

    # ----- start

    def recover(self) -> None:
        """Rebuild the in-memory view after a (re)start of the service."""
        now = time.time()
        with self._lock:
            for job in self.store.in_states(ACTIVE):
                proc = Proc.adopt(job.pid, job.pid_started)
                if proc is None and job.pid is None:  # the service died between spawn and recording the pid
                    proc = find_by_argument(str(self.job_dir(job.id) / files.EXIT_FILE))
                    if proc is not None:
                        self.store.update(job.id, pid=proc.pid, pid_started=proc.started)
                if proc is not None:
                    self.running[job.id] = Running(job.id, job.user, tuple(filter(None, job.gpus.split(","))), proc)
                    self._adopt_viewer(job, until=None)
                    continue
                kill_leftovers(job.pid, job.pid_started)
                status = files.read_exit_status(self.job_dir(job.id))
                if status is not None:  # it ended while no service watched; wrap.py kept the reason
                    self._record_end(job.id, status, None)
                else:
                    checkpoint = rundir.last_checkpoint(self.job_dir(job.id))
                    where = f"; last checkpoint {checkpoint}" if checkpoint else "; no checkpoint was saved"
                    self.store.transition(job.id, ACTIVE, state=LOST, ended_at=now,
                                          visdom_until=now + self.settings.visdom_linger_s,
                                          reason=f"the task was gone when the service restarted{where}")
            for job in self.store.with_viewer():
                self._adopt_viewer(job, until=job.visdom_until or now)

    def _adopt_viewer(self, job: Job, until: float | None) -> None:
        proc = Proc.adopt(job.visdom_pid, job.visdom_started)
        if proc is None:
            self.store.update(job.id, visdom_pid=None, visdom_started=None, visdom_port=None)
            return
        self.ports.hold([job.visdom_port])
        self.viewers[job.id] = Viewer(job.visdom_port, proc, until)

    def _capacity(self) -> Capacity:
        busy = {gpu for run in self.running.values() for gpu in run.gpus}
        per_user: dict[str, int] = {}
        for run in self.running.values():
            per_user[run.user] = per_user.get(run.user, 0) + 1
        cpu_jobs = sum(1 for run in self.running.values() if not run.gpus)
        lingering = sum(1 for viewer in self.viewers.values() if viewer.until is not None)
        return Capacity(free_gpus=[g for g in self.settings.gpus if g not in busy],
                        free_cpu_slots=self.settings.cpu_slots - cpu_jobs,
                        free_ports=self.ports.free_count() + lingering,
                        running_per_user=per_user, last_start_per_user=self.last_start,
                        max_running_per_user=self.settings.max_running_per_user)

    def _schedule(self) -> None:
        cap = self._capacity()
        if cap.free_ports <= 0 or (cap.free_cpu_slots <= 0 and not cap.free_gpus):
            return
        for job, gpus in pick(self.store.queue_heads(most_starts(cap)), cap):
            if self.store.transition(job.id, [QUEUED], state=RUNNING, started_at=time.time(), gpus=",".join(gpus)):
                try:
                    self._launch(job, gpus)
                except PortsExhausted:  # foreign programs hold the rest of the range: wait for one
                    self.store.transition(job.id, [RUNNING], state=QUEUED, started_at=None, gpus="")
                    return

    def _launch(self, job: Launchable, gpus: tuple[str, ...]) -> None:
        """Start the task and its Visdom side by side: the viewer is ready while the task imports torch
        (its Visdom sink retries until the server answers), so Visdom adds nothing to the launch."""
        directory = self.job_dir(job.id)
        port = self._allocate_port([])
        try:
            private_dir(directory)
            save_hypes(self.store.hypes(job.id), str(directory / rundir.HYPES))
            with ThreadPoolExecutor(1) as pool:
                viewer = pool.submit(self._open_viewer, job.id, port, None)
                proc = Proc.from_popen(self._spawn_task(job, gpus, port))
                self.running[job.id] = Running(job.id, job.user, gpus, proc)
                self.last_start[job.user] = time.time()
                self.store.update(job.id, pid=proc.pid, pid_started=proc.started)
                viewer.result()
        except VisdomStartError as exc:  # the task must not plot to a port that goes to another job
            self.ports.release(port)
            self.running[job.id].killed_reason = f"could not start its Visdom: {exc}"
            proc.signal_group(signal.SIGKILL)
        except OSError as exc:
            self._stop_viewer(job.id)
            self.ports.release(port)
            self.store.transition(job.id, ACTIVE, state=FAILED, ended_at=time.time(),
                                  reason=f"could not start: {exc}")
            self.endings.notify(job.id)

    def _spawn_task(self, job: Launchable, gpus: tuple[str, ...], viz_port: int) -> subprocess.Popen:
        directory = self.job_dir(job.id)
        env = scrubbed_environment(os.environ, CUDA_VISIBLE_DEVICES=",".join(gpus),
                                   CAUCHY_HOME=str(self.settings.home),  # where the task finds published weights
                                   **job_environment(self.settings, self.store.hypes(job.id)))  # what it may fetch
        with open_private(directory / files.LOGS["stdout"]) as out, open_private(directory / files.LOGS["stderr"]) as err:
            return subprocess.Popen(self.task_argv(job, viz_port), cwd=self.settings.repo_root, env=env,
                                    umask=JOB_UMASK, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)

    def task_argv(self, job: Launchable, viz_port: int) -> list[str]:
        directory = self.job_dir(job.id)
        argv = [sys.executable, str(WRAP_SCRIPT), str(directory / files.EXIT_FILE), "--",
                *self.settings.task_command, "--hypes", str(directory / rundir.HYPES), "--phase", job.phase,
                "--viz_port", str(viz_port), "--viz_base_url", visdom_base_url(job.id), "--tmp_dir", str(directory)]
        if job.resume_from:
            argv += ["--resume", job.resume_from]
        if job.inputs:
            argv += ["--input", job.inputs]
        return argv

    # ----- watch and end

    def _watch(self) -> None:
        for run in list(self.running.values()):
            if not run.proc.alive():
                self._finish(run)
            elif not run.killed_reason:
                self._enforce_limits(run)

    def _enforce_limits(self, run: Running) -> None:
        """Memory past the cap: killed at once (the machine is at stake). Wall clock or disk past theirs:
        stopped as a user would (SIGTERM, a checkpoint, the grace period), the limit in its reason."""
        limits = self.settings
        if limits.job_memory_limit_mb:
            rss_mb = sum(p["rss_mb"] for p in self._sample(run))
            if rss_mb > limits.job_memory_limit_mb:
                run.killed_reason = f"killed for memory: {rss_mb:.0f} MB used, limit {limits.job_memory_limit_mb} MB"
                run.proc.signal_group(signal.SIGKILL)
                return
        now = time.time()
        if limits.job_wall_clock_limit_s and now - run.proc.started > limits.job_wall_clock_limit_s:
            self._stop_for_limit(run, f"wall-clock limit of {limits.job_wall_clock_limit_s:g} s reached")
        elif limits.job_disk_quota_mb and now - run.disk_checked_at > DISK_CHECK_S:
            run.disk_checked_at = now
            used_mb = files.disk_usage(self.job_dir(run.job_id)) / 2**20
            if used_mb > limits.job_disk_quota_mb:
                self._stop_for_limit(run, f"disk quota of {limits.job_disk_quota_mb} MB for the job directory "
                                          f"exceeded ({used_mb:.0f} MB used)")

    def _stop_for_limit(self, run: Running, reason: str) -> None:
        """Ask for the stop ``_enforce_stops`` carries out; the reason is kept until the job's end."""
        self.store.transition(run.job_id, [RUNNING], state=STOPPING, stop_requested_at=time.time(), reason=reason)

    def _sample(self, run: Running) -> list[dict[str, Any]]:
        """CPU and memory of the job's processes; ``cpu_percent`` needs the same Process object twice."""
        stats = []
        tree = run.proc.tree()
        for ps in tree:
            cached = run._cache.setdefault(ps.pid, ps)
            try:  # any of them may end while we look (a data-loader worker, the task itself)
                with cached.oneshot():
                    role = "launcher" if ps.pid == run.proc.pid else "task" if cached.ppid() == run.proc.pid else "worker"
                    stats.append({"role": role, "pid": ps.pid,
                                  "cpu_percent": cached.cpu_percent(None),
                                  "rss_mb": round(cached.memory_info().rss / 2**20, 1)})
            except psutil.Error:
                continue
        return stats

    def _finish(self, run: Running) -> None:
        """Record the end of a job whose launcher exited, and make sure no process of it is left."""
        run.proc.reap()
        run.proc.signal_group(signal.SIGKILL)
        status = files.read_exit_status(self.job_dir(run.job_id))
        if status is None and run.proc.popen is not None:  # wrap.py itself was killed
            code = run.proc.popen.returncode
            status = {"exit_code": code if code >= 0 else None, "signal": -code if code < 0 else None}
        self._record_end(run.job_id, status, run.killed_reason)
        del self.running[run.job_id]
        self._wake.set()  # resources were freed

    def _record_end(self, job_id: int, status: dict[str, Any] | None, killed_reason: str | None) -> None:
        job = self.store.get(job_id)
        if status is None and killed_reason is None:
            fields = {"state": FAILED, "reason": "the task ended; its exit status is unknown"}
        else:
            status = status or {}
            outcome = judge(status.get("exit_code"), status.get("signal"),
                            read_tail(self.job_dir(job_id) / files.LOGS["stderr"]),
                            stop_requested=job.stop_requested_at is not None, killed_by_us=killed_reason)
            fields = {"state": outcome.state, "reason": outcome.reason,
                      "exit_code": outcome.exit_code, "exit_signal": outcome.signal}
        if job.state == STOPPING and job.reason:  # stopped for a limit (``_stop_for_limit``): say which first
            fields["reason"] = f"{job.reason}; {fields['reason']}"
        until = time.time() + self.settings.visdom_linger_s
        self.store.transition(job_id, ACTIVE, ended_at=time.time(), visdom_until=until, **fields)
        if job_id in self.viewers:
            self.viewers[job_id].until = until
        self.endings.notify(job_id)

    def _enforce_stops(self) -> None:
        grace = self.settings.stop_grace_s
        for job in self.store.in_states([STOPPING]):
            run = self.running.get(job.id)
            if run is None:  # stopped while its start was being undone
                self.store.transition(job.id, [STOPPING], state=STOPPED, ended_at=time.time(),
                                      reason="cancelled before it started")
                self.endings.notify(job.id)
                continue
            if run.term_sent_at is None:
                run.term_sent_at = time.time()
                run.proc.send(signal.SIGTERM)  # wrap.py passes it on to the task
            elif time.time() - run.term_sent_at > grace and not run.killed_reason:
                run.killed_reason = f"stopped: killed after the {grace:g} s grace period without a checkpoint"
                run.proc.signal_group(signal.SIGKILL)

    # ----- Visdom viewers

    def _start_viewer(self, job_id: int, until: float) -> Viewer:
        """Start an ended job's Visdom on a fresh port, retrying on a port a foreign program grabbed."""
        tried: list[int] = []
        for attempt in range(VISDOM_ATTEMPTS):
            port = self._allocate_port(tried)
            try:
                return self._open_viewer(job_id, port, until)
            except VisdomStartError:
                self.ports.release(port)
                tried.append(port)
                if attempt == VISDOM_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _open_viewer(self, job_id: int, port: int, until: float | None) -> Viewer:
        directory = self.job_dir(job_id)
        popen = start_visdom(port, visdom_base_url(job_id), str(directory / files.VISDOM_ENV_DIR),
                             str(directory / files.LOGS["visdom"]))
        viewer = Viewer(port, Proc.from_popen(popen), until)
        self.viewers[job_id] = viewer
        self.store.update(job_id, visdom_pid=viewer.proc.pid, visdom_started=viewer.proc.started,
                          visdom_port=port, visdom_until=until)
        return viewer

    def _allocate_port(self, avoid: list[int]) -> int:
        """A port from the pool; when all are taken, the viewer of the job that ended first gives its own."""
        while True:
            try:
                return self.ports.allocate(avoid)
            except PortsExhausted:
                idle = [(viewer.until, job_id) for job_id, viewer in self.viewers.items() if viewer.until is not None]
                if not idle:
                    raise
                self._stop_viewer(min(idle)[1])

    def _stop_viewer(self, job_id: int) -> None:
        viewer = self.viewers.get(job_id)
        if viewer is None:
            return
        viewer.proc.terminate_group()
        self.ports.release(viewer.port)
        self.store.update(job_id, visdom_pid=None, visdom_started=None, visdom_port=None)
        del self.viewers[job_id]

    def _close_idle_viewers(self) -> None:
        now = time.time()
        for job_id, viewer in list(self.viewers.items()):
            if (viewer.until is not None and viewer.until < now) or not viewer.proc.alive():
                self._stop_viewer(job_id)

    def ensure_viewer(self, job_id: int) -> Viewer:
        """The job's Visdom, started again from its saved env if it was shut down (charts opened)."""
        with self._lock:
            viewer = self.viewers.get(job_id)
            if viewer is not None and viewer.proc.alive():
                if viewer.until is not None:
                    viewer.until = max(viewer.until, time.time() + self.settings.visdom_linger_s)
                    self.store.update(job_id, visdom_until=viewer.until)
                return viewer
            self._stop_viewer(job_id)
            return self._start_viewer(job_id, until=time.time() + self.settings.visdom_linger_s)

    def stop_viewer(self, job_id: int) -> bool:
        """Shut an ended job's viewer now; a running job keeps its own (the task writes to it)."""
        with self._lock:
            if job_id in self.running or job_id not in self.viewers:
                return False
            self._stop_viewer(job_id)
            return True

    def viewer_status(self, job_id: int) -> dict[str, Any]:
        viewer = self.viewers.get(job_id)
        if viewer is None:
            return {"url": visdom_base_url(job_id) + "/", "port": None, "up": False}
        return {"url": visdom_base_url(job_id) + "/", "port": viewer.port,
                "direct_url": f"http://127.0.0.1:{viewer.port}{visdom_base_url(job_id)}/",
                "up": is_visdom_up(viewer.port, visdom_base_url(job_id), timeout=1.0), "until": viewer.until}

    # ----- queries used by the API

    def job_dir(self, job_id: int) -> Path:
        return files.job_dir(self.settings.jobs_dir, job_id)

    def processes(self, job_id: int) -> list[dict[str, Any]]:
        run = self.running.get(job_id)
        stats = self._sample(run) if run else []
        viewer = self.viewers.get(job_id)
        if viewer is not None:
            for ps in viewer.proc.tree():
                try:
                    stats.append({"role": "visdom", "pid": ps.pid, "cpu_percent": None,
                                  "rss_mb": round(ps.memory_info().rss / 2**20, 1)})
                except psutil.Error:
                    continue
        return stats

