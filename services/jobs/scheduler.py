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

import heapq
from collections import deque
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


def kind(job: QueuedJob) -> str:
    return "gpu" if job.gpus_requested > 0 else "cpu"


def most_starts(cap: Capacity) -> int:
    """How many jobs of one user, priority and kind a pass can look at: each one it looks at starts (using a
    GPU or a CPU slot, and a port) or blocks its kind, so the rest of that user's queue cannot matter.
    The supervisor reads only these from the database, however long the queue."""
    return max(1, min(cap.free_ports, max(len(cap.free_gpus), cap.free_cpu_slots)))


def pick(queued: Sequence[QueuedJob], cap: Capacity) -> list[tuple[QueuedJob, tuple[str, ...]]]:
    """The jobs to start, each with the GPUs it gets, in start order.

    Each priority level keeps a heap of its users keyed by (running jobs, last start, oldest job of a kind
    not blocked): keys only grow, so a popped user whose key went stale is pushed back with the new one.
    Linear in the queue, plus a logarithm per job looked at.
    """
    running = dict(cap.running_per_user)
    last_start = dict(cap.last_start_per_user)
    free_gpus = list(cap.free_gpus)
    cpu_slots, ports = cap.free_cpu_slots, cap.free_ports
    blocked = {"gpu": False, "cpu": False}
    chosen: list[tuple[QueuedJob, tuple[str, ...]]] = []
    levels: dict[int, dict[str, dict[str, deque[QueuedJob]]]] = {}
    for job in sorted(queued, key=lambda j: j.id):
        queues = levels.setdefault(job.priority, {}).setdefault(job.user, {"gpu": deque(), "cpu": deque()})
        queues[kind(job)].append(job)

    def key(user: str, queues: dict[str, deque[QueuedJob]]) -> tuple[int, float, int] | None:
        heads = [q[0].id for k, q in queues.items() if q and not blocked[k]]
        return (running.get(user, 0), last_start.get(user, 0.0), min(heads)) if heads else None

    for priority in sorted(levels, reverse=True):
        users = levels[priority]
        heap = [(k, user) for user, queues in users.items() if (k := key(user, queues)) is not None]
        heapq.heapify(heap)
        while heap and ports > 0 and not all(blocked.values()):
            stale, user = heapq.heappop(heap)
            queues = users[user]
            current = key(user, queues)
            if current is None:
                continue
            if current != stale:
                heapq.heappush(heap, (current, user))
                continue
            if cap.max_running_per_user and running.get(user, 0) >= cap.max_running_per_user:
                continue  # passed over for this pass: its count only grows
            job_kind = next(k for k, q in queues.items() if q and not blocked[k] and q[0].id == current[2])
            job = queues[job_kind].popleft()
            fits = job.gpus_requested <= len(free_gpus) if job_kind == "gpu" else cpu_slots > 0
            if not fits:
                blocked[job_kind] = True
            else:
                gpus = tuple(free_gpus[:job.gpus_requested])
                del free_gpus[:job.gpus_requested]
                cpu_slots -= job_kind == "cpu"
                ports -= 1
                running[user] = running.get(user, 0) + 1
                last_start[user] = float("inf")  # started now: after everyone who is waiting
                chosen.append((job, gpus))
            if (k := key(user, queues)) is not None:
                heapq.heappush(heap, (k, user))
    return chosen
