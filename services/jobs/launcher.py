"""Starts and ends job tasks: ``wrap.py`` around the task command, the leader of its own process group (one
``killpg`` ends it with its data-loader workers), with the job's GPUs and a scrubbed environment; adopts
the tasks of a previous service; samples their processes; reads how they ended. It decides nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from cauchy import rundir
from cauchy.hypes import save_hypes
from services.config import Settings
from services.containment import job_environment
from services.jobs import files
from services.jobs.environment import JOB_UMASK, scrubbed_environment
from services.jobs.procs import Proc, find_by_argument, kill_leftovers
from services.jobs.store import Job, Store
from services.jobs.viewers import visdom_base_url
from services.private import open_private, private_dir

WRAP_SCRIPT = Path(__file__).with_name("wrap.py")


class Launchable(Protocol):
    """What starting a job reads (``store.LAUNCH_COLUMNS``; a ``Job`` has it too)."""

    id: int
    user: str
    phase: str
    resume_from: str | None
    inputs: str | None
    processes: int | None
    memory_mb: int | None
    time_limit_s: float | None


@dataclass
class Running:
    """A job's task while it runs, and the limits it runs under."""

    job_id: int
    user: str
    gpus: tuple[str, ...]
    proc: Proc
    memory_limit_mb: int = 0  # 0: none
    wall_clock_limit_s: float = 0.0  # 0: none
    term_sent_at: float | None = None
    killed_reason: str | None = None
    disk_checked_at: float = 0.0
    _cache: dict[int, psutil.Process] = field(default_factory=dict, repr=False)


class Launcher:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self._running: dict[int, Running] = {}
        self._lock = threading.Lock()

    def job_dir(self, job_id: int) -> Path:
        return files.job_dir(self.settings.jobs_dir, job_id)

    def get(self, job_id: int) -> Running | None:
        with self._lock:
            return self._running.get(job_id)

    def all(self) -> list[Running]:
        with self._lock:
            return list(self._running.values())

    def _limits(self, job: Launchable) -> dict[str, Any]:
        """The service's per-job limits, narrowed by what the job states (its memory, its time limit)."""
        memory = job.memory_mb or self.settings.job_memory_limit_mb
        wall = [limit for limit in (self.settings.job_wall_clock_limit_s, job.time_limit_s) if limit]
        return {"memory_limit_mb": memory, "wall_clock_limit_s": min(wall) if wall else 0.0}

    def start(self, job: Launchable, gpus: tuple[str, ...], viz_port: int) -> Running:
        """Write the job's hypes and start its task; the pid is recorded at once (a restart adopts it)."""
        directory = self.job_dir(job.id)
        private_dir(directory)
        files.clear_exit_status(directory)  # a requeued job's previous run left its own
        save_hypes(self.store.hypes(job.id), str(directory / rundir.HYPES))
        proc = Proc.from_popen(self._spawn(job, gpus, viz_port))
        run = Running(job.id, job.user, gpus, proc, **self._limits(job))
        with self._lock:
            self._running[job.id] = run
        self.store.update(job.id, pid=proc.pid, pid_started=proc.started)
        return run

    def adopt(self, job: Job) -> Running | None:
        """The task a previous service started, if it still runs (found by its exit-file argument when the
        service died before recording its pid)."""
        proc = Proc.adopt(job.pid, job.pid_started)
        if proc is None and job.pid is None:
            proc = find_by_argument(str(self.job_dir(job.id) / files.EXIT_FILE))
            if proc is not None:
                self.store.update(job.id, pid=proc.pid, pid_started=proc.started)
        if proc is None:
            return None
        run = Running(job.id, job.user, tuple(filter(None, job.gpus.split(","))), proc, **self._limits(job))
        with self._lock:
            self._running[job.id] = run
        return run

    def kill_leftovers(self, job: Job) -> None:
        """SIGKILL what is left of the group of a job whose task is gone."""
        kill_leftovers(job.pid, job.pid_started)

    def _spawn(self, job: Launchable, gpus: tuple[str, ...], viz_port: int) -> subprocess.Popen:
        directory = self.job_dir(job.id)
        env = scrubbed_environment(os.environ, CUDA_VISIBLE_DEVICES=",".join(gpus),
                                   CAUCHY_HOME=str(self.settings.home),  # where the task finds published weights
                                   **job_environment(self.settings, self.store.hypes(job.id)))  # what it may fetch
        with open_private(directory / files.LOGS["stdout"]) as out, open_private(directory / files.LOGS["stderr"]) as err:
            return subprocess.Popen(self.task_argv(job, viz_port, len(gpus) or job.processes or 1), cwd=self.settings.repo_root, env=env,
                                    umask=JOB_UMASK, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)

    def task_argv(self, job: Launchable, viz_port: int, ranks: int = 1) -> list[str]:
        """``ranks`` > 1: the task command starts that many processes through torch.distributed.run
        (``run_tasks.py --nproc-per-node``), one a GPU (``cuda:LOCAL_RANK`` of ``CUDA_VISIBLE_DEVICES``)."""
        directory = self.job_dir(job.id)
        argv = [sys.executable, str(WRAP_SCRIPT), str(directory / files.EXIT_FILE), "--",
                *self.settings.task_command, "--hypes", str(directory / rundir.HYPES), "--phase", job.phase,
                "--viz_port", str(viz_port), "--viz_base_url", visdom_base_url(job.id), "--tmp_dir", str(directory)]
        if ranks > 1:
            argv += ["--nproc-per-node", str(ranks)]
        if job.resume_from:
            argv += ["--resume", job.resume_from]
        if job.inputs:
            argv += ["--input", job.inputs]
        return argv

    # ----- ending

    def ask_to_stop(self, run: Running, at: float) -> None:
        """SIGTERM to the launcher, which passes it on: the task saves a checkpoint and exits."""
        run.term_sent_at = at
        run.proc.send(signal.SIGTERM)

    def kill(self, run: Running, reason: str) -> None:
        """SIGKILL the whole group; ``reason`` becomes the job's."""
        run.killed_reason = reason
        run.proc.signal_group(signal.SIGKILL)

    def finish(self, run: Running) -> dict[str, Any] | None:
        """Forget a task whose launcher exited, making sure no process of its group is left; how it ended
        (``wrap.py``'s record, else the launcher's own exit status; None when unknown)."""
        run.proc.reap()
        run.proc.signal_group(signal.SIGKILL)
        with self._lock:
            self._running.pop(run.job_id, None)
        status = files.read_exit_status(self.job_dir(run.job_id))
        if status is None and run.proc.popen is not None:  # wrap.py itself was killed
            code = run.proc.popen.returncode
            status = {"exit_code": code if code >= 0 else None, "signal": -code if code < 0 else None}
        return status

    def terminate_all(self) -> None:
        """End every task (tests leave nothing behind)."""
        for run in self.all():
            run.proc.terminate_group(grace=0.5)

    # ----- watching

    def sample(self, run: Running) -> list[dict[str, Any]]:
        """CPU and memory of the job's processes; ``cpu_percent`` needs the same Process object twice."""
        stats = []
        for ps in run.proc.tree():
            cached = run._cache.setdefault(ps.pid, ps)
            try:  # any of them may end while we look (a data-loader worker, the task itself)
                with cached.oneshot():
                    role = "launcher" if ps.pid == run.proc.pid else "task" if cached.ppid() == run.proc.pid else "worker"
                    stats.append({"role": role, "pid": ps.pid, "cpu_percent": cached.cpu_percent(None),
                                  "rss_mb": round(cached.memory_info().rss / 2**20, 1)})
            except psutil.Error:
                continue
        return stats
