"""Which queued jobs start now: a pure function of the queue and the free resources.

Policy:
- higher priority first;
- at equal priority, round-robin between users: the next job is taken from the user with the
  fewest running jobs, then from the user whose last job started longest ago (then first come),
  so one user's hundred submissions do not shut out a colleague's single job;
- an optional per-user cap on running jobs (``max_running_per_user``); a job over the cap is
  passed over, it does not hold anyone else back;
- no overtaking within a resource kind: once a GPU job does not fit, no later GPU job starts
  (so a 2-GPU job is not starved by a stream of 1-GPU jobs); the same for CPU slots. A GPU job
  never waits for a CPU slot and the other way round.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class QueuedJob(Protocol):
    id: int
    user: str
    priority: int
    gpus_requested: int


@dataclass
class Capacity:
    free_gpus: list[str]
    free_cpu_slots: int
    free_ports: int
    running_per_user: dict[str, int] = field(default_factory=dict)
    last_start_per_user: dict[str, float] = field(default_factory=dict)
    max_running_per_user: int = 0


def pick(queued: Sequence[QueuedJob], cap: Capacity) -> list[tuple[QueuedJob, tuple[str, ...]]]:
    """The jobs to start, each with the GPUs it gets, in start order."""
    running = dict(cap.running_per_user)
    last_start = dict(cap.last_start_per_user)
    free_gpus = list(cap.free_gpus)
    cpu_slots, ports = cap.free_cpu_slots, cap.free_ports
    blocked = {"gpu": False, "cpu": False}
    chosen: list[tuple[QueuedJob, tuple[str, ...]]] = []
    for priority in sorted({job.priority for job in queued}, reverse=True):
        level = [job for job in queued if job.priority == priority]
        while level and ports > 0:
            job = min(level, key=lambda j: (running.get(j.user, 0), last_start.get(j.user, 0.0), j.id))
            level.remove(job)
            kind = "gpu" if job.gpus_requested > 0 else "cpu"
            if blocked[kind] or (cap.max_running_per_user and running.get(job.user, 0) >= cap.max_running_per_user):
                continue
            fits = job.gpus_requested <= len(free_gpus) if kind == "gpu" else cpu_slots > 0
            if not fits:
                blocked[kind] = True
                continue
            gpus = tuple(free_gpus[:job.gpus_requested])
            del free_gpus[:job.gpus_requested]
            cpu_slots -= kind == "cpu"
            ports -= 1
            running[job.user] = running.get(job.user, 0) + 1
            last_start[job.user] = float("inf")  # started now: after everyone who is waiting
            chosen.append((job, gpus))
    return chosen
