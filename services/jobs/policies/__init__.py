"""Scheduling policies, chosen by the ``scheduler_policy`` setting: each a pure ``decide`` over the queue,
the running set, usage history and capacity (``base.decide`` with the policy's order and preemption rule)."""
from __future__ import annotations

from collections.abc import Sequence

from services.jobs.policies.base import Active, Capacity, Decision, Pending, Policy, Usage, decide
from services.jobs.policies.fairshare import FairShare
from services.jobs.policies.fifo import Fifo
from services.jobs.policies.priority import Priority

POLICIES: dict[str, Policy] = {policy.name: policy for policy in (Fifo(), Priority(), FairShare())}
DEFAULT = "fairshare"


def policy(name: str) -> Policy:
    """The policy called ``name``; an unknown one is an error that lists the valid names."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown scheduler policy {name!r}; policies: {', '.join(POLICIES)}") from None


def decide_with(name: str, queue: Sequence[Pending], running: Sequence[Active], usage: Usage,
                capacity: Capacity, now: float) -> Decision:
    """``decide`` under the policy called ``name``: what the supervisor and the simulator call."""
    return decide(policy(name), queue, running, usage, capacity, now)
