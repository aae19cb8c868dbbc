"""``priority``: higher priority first; at equal priority, round-robin between users (the one with the fewest
running jobs, then the one whose last job started longest ago, then first come). A job preempts running jobs
of a strictly lower priority."""
from __future__ import annotations

from collections.abc import Sequence

from services.jobs.policies.base import Active, Pending, State, Usage


class Priority:
    name = "priority"
    heads_kind_after = 1.0

    def order(self, queue: Sequence[Pending], running: Sequence[Active], usage: Usage,
              state: State) -> list[Pending]:
        """A user's k-th job of a level counts as if the k-1 before it had started: the round-robin of a
        pass, as one sort."""
        running_count: dict[str, int] = {}
        for run in running:
            running_count[run.user] = running_count.get(run.user, 0) + 1
        seen: dict[tuple[int, str], int] = {}
        keys: dict[int, tuple[int, int, float, int]] = {}
        for job in sorted(queue, key=lambda j: j.id):
            k = seen.get((job.priority, job.user), 0)
            seen[(job.priority, job.user)] = k + 1
            last = usage.last_start.get(job.user, 0.0) if k == 0 else float("inf")
            keys[job.id] = (-job.priority, running_count.get(job.user, 0) + k, last, job.id)
        return sorted(queue, key=lambda job: keys[job.id])

    def reclaims(self, job: Pending, state: State) -> bool:
        return False

    def may_preempt(self, job: Pending, victim: Active, state: State) -> bool:
        return victim.priority < job.priority
