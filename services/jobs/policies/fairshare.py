"""``fairshare`` (the default): priority classes first (``high``, ``normal``, ``low``); within a class, fair
share between groups by their shares and between a group's users equally.

What counts against a group or user is its charge: the units (GPUs, or CPU slots for CPU jobs) it holds now
plus its recent usage, decayed unit-seconds over the half-life's mean life (Slurm's fair-share usage).
The queue is ordered as weighted fair queueing orders packets: a user's k-th waiting job is placed as if the
k-1 before it had started (its virtual time is the user's charge plus their units), the group's jobs are
merged by that, and each group's i-th job gets the group's charge plus the units before it, over its share.

Preemption: a job takes resources from a running job of a lower class, or, in the same class, from a group
over its entitlement (its nominal GPU quota, else its share of the capacity) when its own group is within
its own: borrowed GPUs are taken back as Kueue's cohorts do.
"""
from __future__ import annotations

from collections.abc import Sequence

from services.jobs.policies.base import Active, Capacity, Pending, State, Usage, charge, class_rank


class FairShare:
    name = "fairshare"

    def order(self, queue: Sequence[Pending], running: Sequence[Active], usage: Usage,
              capacity: Capacity) -> list[Pending]:
        held: dict[tuple[str, str], int] = {}  # (kind, user) -> units
        group_of: dict[str, str] = {}
        for item in (*running, *queue):
            group_of.setdefault(item.user, item.group)
        for run in running:
            held[(run.kind, run.user)] = held.get((run.kind, run.user), 0) + run.units
        user_charge: dict[tuple[str, str], float] = {}
        group_charge: dict[tuple[str, str], float] = {}
        for kind in ("gpu", "cpu"):
            seconds = usage.seconds(kind)
            for user, group in group_of.items():
                value = charge(held.get((kind, user), 0), seconds.get(user, 0.0), capacity.half_life_s)
                user_charge[(kind, user)] = value
                group_charge[(kind, group)] = group_charge.get((kind, group), 0.0) + value
        # Users' virtual times within their group, per class and kind.
        user_time: dict[int, float] = {}
        queued_units: dict[tuple[int, str, str], float] = {}
        for job in sorted(queue, key=lambda j: j.id):
            key = (class_rank(job.priority), job.kind, job.user)
            before = queued_units.get(key, 0.0)
            user_time[job.id] = user_charge[(job.kind, job.user)] + before
            queued_units[key] = before + job.units
        # Groups' virtual times: the group's jobs in their users' order, units before each over the share.
        group_time: dict[int, float] = {}
        group_units: dict[tuple[int, str, str], float] = {}
        for job in sorted(queue, key=lambda j: (user_time[j.id], j.id)):
            key = (class_rank(job.priority), job.kind, job.group)
            before = group_units.get(key, 0.0)
            group_time[job.id] = (group_charge.get((job.kind, job.group), 0.0) + before) / capacity.share(job.group)
            group_units[key] = before + job.units
        return sorted(queue, key=lambda j: (-class_rank(j.priority), group_time[j.id], user_time[j.id], j.id))

    def may_preempt(self, job: Pending, victim: Active, state: State) -> bool:
        if class_rank(victim.priority) != class_rank(job.priority):
            return class_rank(victim.priority) < class_rank(job.priority)
        if victim.group == job.group:
            return False
        kind = job.kind
        own = state.held[kind].get(job.group, 0) + job.units
        return own <= state.entitled(kind, job.group) + 1e-9 and state.over_share(kind, victim.group) > 1e-9
