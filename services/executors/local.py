"""The ``local`` executor (the default): job tasks as processes of this machine. ``wrap.py`` runs around the
task command, the leader of its own process group (one ``killpg`` ends it with its data-loader workers), with
the job's GPUs and a scrubbed environment; it adopts the tasks of a previous service, samples their
processes and reads how they ended. It decides nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from cauchy import rundir
from cauchy.hypes import save_hypes
from services.containment import job_environment
from services.executors.base import Executor, Launchable, Running
from services.jobs import files
from services.jobs.environment import JOB_UMASK, scrubbed_environment
from services.jobs.procs import Proc, find_by_argument, kill_leftovers
from services.jobs.store import Job
from services.jobs.viewers import visdom_base_url
from services.private import open_private, private_dir

WRAP_SCRIPT = Path(__file__).resolve().parent.parent / "jobs" / "wrap.py"


@dataclass
class LocalRun(Running):
    """A local task: its launcher process (``wrap.py``), and the psutil handles ``sample`` reuses."""

    proc: Proc | None = None
    _cache: dict[int, psutil.Process] = field(default_factory=dict, repr=False)


def ranks(job: Launchable, gpus: tuple[str, ...]) -> int:
    """How many processes the task runs on each of its nodes: one a GPU, or a CPU job's ``processes``
    (docs/distributed.md)."""
    return len(gpus) // (job.nodes or 1) or job.processes or 1


def task_arguments(job: Launchable, directory: str, viz_port: int | None, resume: str | None, ranks: int) -> list[str]:
    """The task's arguments after its command, its run directory being ``directory`` (shared by every
    executor: the Ray one passes a placeholder its node runner fills in, and no Visdom port: the service
    plots what the node streams). ``ranks`` > 1: the task command starts that many processes through
    torch.distributed.run (``run_tasks.py --nproc-per-node``), one a GPU (``cuda:LOCAL_RANK`` of
    ``CUDA_VISIBLE_DEVICES``)."""
    argv = ["--hypes", f"{directory}/{rundir.HYPES}", "--phase", job.phase]
    if viz_port is not None:
        argv += ["--viz_port", str(viz_port), "--viz_base_url", visdom_base_url(job.id)]
    argv += ["--tmp_dir", directory]
    if ranks > 1:
        argv += ["--nproc-per-node", str(ranks)]
    if resume:
        argv += ["--resume", resume]
    if job.inputs:
        argv += ["--input", job.inputs]
    return argv


def task_environment(executor: Executor, job: Launchable, gpus: tuple[str, ...]) -> dict[str, str]:
    """What the task's environment adds to the scrubbed one: its GPUs, the home, what it may fetch."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(gpus), "CAUCHY_HOME": str(executor.settings.home),
            **job_environment(executor.settings, executor.store.hypes(job.id))}


def prepare_run_dir(executor: Executor, job: Launchable) -> Path:
    """The job directory, ready for a (new) run: private, the hypes written, a previous run's exit cleared."""
    directory = files.job_dir(executor.settings.jobs_dir, job.id)
    private_dir(directory)
    files.clear_exit_status(directory)  # a requeued job's previous run left its own
    save_hypes(executor.store.hypes(job.id), str(directory / rundir.HYPES))
    return directory


class LocalExecutor(Executor):
    name = "local"

    def job_dir(self, job_id: int) -> Path:
        return files.job_dir(self.settings.jobs_dir, job_id)

    def start(self, job: Launchable, gpus: tuple[str, ...], viz_port: int) -> Running:
        """Write the job's hypes and start its task; the pid is recorded at once (a restart adopts it)."""
        prepare_run_dir(self, job)
        started = time.time()  # the limit's clock: psutil's start time (proc.started) reads up to a second early on some VMs
        proc = Proc.from_popen(self._spawn(job, gpus, viz_port))
        run = self._keep(LocalRun(job.id, job.user, gpus, started, f"pid {proc.pid}", **self.limits(job),
                                  proc=proc))
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
        return self._keep(LocalRun(job.id, job.user, tuple(filter(None, job.gpus.split(","))), proc.started,
                                   f"pid {proc.pid}", **self.limits(job), proc=proc))

    def kill_leftovers(self, job: Job) -> None:
        """SIGKILL what is left of the group of a job whose task is gone."""
        kill_leftovers(job.pid, job.pid_started)

    def _spawn(self, job: Launchable, gpus: tuple[str, ...], viz_port: int) -> subprocess.Popen:
        directory = self.job_dir(job.id)
        env = scrubbed_environment(os.environ, **task_environment(self, job, gpus))
        with open_private(directory / files.LOGS["stdout"]) as out, open_private(directory / files.LOGS["stderr"]) as err:
            return subprocess.Popen(self.task_argv(job, viz_port, ranks(job, gpus)), cwd=self.settings.repo_root, env=env,
                                    umask=JOB_UMASK, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)

    def task_argv(self, job: Launchable, viz_port: int, ranks: int) -> list[str]:
        directory = self.job_dir(job.id)
        return [sys.executable, str(WRAP_SCRIPT), str(directory / files.EXIT_FILE), "--",
                *self.settings.task_command, *task_arguments(job, str(directory), viz_port, job.resume_from, ranks)]

    # ----- ending

    def alive(self, run: LocalRun) -> bool:
        return run.proc.alive()

    def ask_to_stop(self, run: LocalRun, at: float) -> None:
        """SIGTERM to the launcher, which passes it on: the task saves a checkpoint and exits."""
        run.term_sent_at = at
        run.proc.send(signal.SIGTERM)

    def kill(self, run: LocalRun, reason: str) -> None:
        """SIGKILL the whole group; ``reason`` becomes the job's."""
        run.killed_reason = reason
        run.proc.signal_group(signal.SIGKILL)

    def finish(self, run: LocalRun) -> dict[str, Any] | None:
        """Forget a task whose launcher exited, making sure no process of its group is left; how it ended
        (``wrap.py``'s record, else the launcher's own exit status; None when unknown)."""
        run.proc.reap()
        run.proc.signal_group(signal.SIGKILL)
        self._forget(run)
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

    def sample(self, run: LocalRun) -> list[dict[str, Any]]:
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
