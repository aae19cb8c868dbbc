"""What the supervisor asks of an executor, whatever runs the job's task: local processes or a Ray cluster.

The supervisor decides (what starts, stops, is preempted, when limits are past); an executor carries it out
and reports back: it starts a job's task, says whether it still runs, asks it to stop (SIGTERM: a checkpoint,
then the exit), kills it, reads how it ended, adopts the tasks a previous service started, and samples its
processes when it can see them.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

from services.config import Settings
from services.jobs.store import Job, Store


class Launchable(Protocol):
    """What starting a job reads (``store.LAUNCH_COLUMNS``; a ``Job`` has it too)."""

    id: int
    user: str
    phase: str
    resume_from: str | None
    inputs: str | None
    processes: int | None
    nodes: int | None
    cpu_slots: int | None
    memory_mb: int | None
    time_limit_s: float | None


@dataclass
class Running:
    """A job's task while it runs, and the limits it runs under."""

    job_id: int
    user: str
    gpus: tuple[str, ...]
    started: float  # when the task started (the wall-clock limit counts from it)
    where: str  # where it runs, for the log: "pid 123", "ray job cauchy-5-..., node b"
    memory_limit_mb: int = 0  # 0: none
    wall_clock_limit_s: float = 0.0  # 0: none
    term_sent_at: float | None = None
    killed_reason: str | None = None
    disk_checked_at: float = 0.0


class Executor(ABC):
    """Runs job tasks somewhere; keeps the running ones in memory (rebuilt by ``adopt`` after a restart)."""

    name: str

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self._running: dict[int, Running] = {}
        self._lock = threading.Lock()

    def get(self, job_id: int) -> Running | None:
        with self._lock:
            return self._running.get(job_id)

    def all(self) -> list[Running]:
        with self._lock:
            return list(self._running.values())

    def _keep(self, run: Running) -> Running:
        with self._lock:
            self._running[run.job_id] = run
        return run

    def _forget(self, run: Running) -> None:
        with self._lock:
            self._running.pop(run.job_id, None)

    def limits(self, job: Launchable) -> dict[str, Any]:
        """The service's per-job limits, narrowed by what the job states (its memory, its time limit)."""
        memory = job.memory_mb or self.settings.job_memory_limit_mb
        wall = [limit for limit in (self.settings.job_wall_clock_limit_s, job.time_limit_s) if limit]
        return {"memory_limit_mb": memory, "wall_clock_limit_s": min(wall) if wall else 0.0}

    @abstractmethod
    def start(self, job: Launchable, gpus: tuple[str, ...], viz_port: int) -> Running:
        """Start the job's task with these GPUs (plotting to its Visdom on ``viz_port``); what a restart
        needs to adopt it is recorded at once."""

    @abstractmethod
    def adopt(self, job: Job) -> Running | None:
        """The task a previous service started for ``job``, if it still runs."""

    @abstractmethod
    def alive(self, run: Running) -> bool:
        """Whether the task still runs (False once it ended, whatever the reason)."""

    @abstractmethod
    def ask_to_stop(self, run: Running, at: float) -> None:
        """SIGTERM to the task: it saves a checkpoint and exits."""

    @abstractmethod
    def kill(self, run: Running, reason: str) -> None:
        """End the task at once; ``reason`` becomes the job's."""

    @abstractmethod
    def finish(self, run: Running) -> dict[str, Any] | None:
        """Forget an ended task, leaving nothing of it running; how it ended (``exit_code``, ``signal``;
        ``files.LOST_KEY`` when its machine went away with it; None when unknown)."""

    @abstractmethod
    def kill_leftovers(self, job: Job) -> None:
        """End what is left of a job whose task was not adopted after a restart."""

    @abstractmethod
    def sample(self, run: Running) -> list[dict[str, Any]]:
        """CPU and memory of the task's processes, where the service can see them (else empty)."""

    @abstractmethod
    def terminate_all(self) -> None:
        """End every task (tests leave nothing behind)."""

    def resources(self) -> tuple[tuple[str, ...], int]:
        """The GPUs and CPU slots jobs may be given (the policy places jobs on them): the settings' here."""
        return self.settings.gpus, self.settings.cpu_slots

    def machines(self) -> list[tuple[int, int]]:
        """The GPUs and CPU slots of each machine a job may run on, largest first (a submission asking for more
        machines, or more on each, than these give is refused at once): here, this one, as the settings say."""
        return [(len(self.settings.gpus), self.settings.cpu_slots)]

    def nodes(self) -> list[dict[str, Any]]:
        """The machines jobs run on, with their GPUs, load and jobs (none listed for the local executor)."""
        return []

    def pairing(self) -> dict[str, Any]:
        """What an admin needs to join a machine (the key and the command), when the executor has nodes."""
        return {}

    def drain(self, node: str, drain: bool = True) -> None:
        """No new job on ``node``; a LookupError names an unknown node."""
        raise NotImplementedError(f"the {self.name} executor has no nodes to drain")
