"""``fifo``: first come, first served; no preemption (the baseline the others are measured against)."""
from __future__ import annotations

from collections.abc import Sequence

from services.jobs.policies.base import Active, Pending, State, Usage


class Fifo:
    name = "fifo"
    heads_kind_after = 1.0

    def order(self, queue: Sequence[Pending], running: Sequence[Active], usage: Usage,
              state: State) -> list[Pending]:
        return sorted(queue, key=lambda job: job.id)

    def reclaims(self, job: Pending, state: State) -> bool:
        return False

    def may_preempt(self, job: Pending, victim: Active, state: State) -> bool:
        return False
