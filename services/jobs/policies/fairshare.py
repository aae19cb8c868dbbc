"""``fairshare`` (the default): fair share between groups by their shares, and between a group's users
equally; priority classes (``high``, ``normal``, ``low``) order the jobs within a group.

What counts against a group or user is its charge: the units (GPUs, or CPU slots for CPU jobs) it holds now
plus its recent usage, decayed unit-seconds over the half-life's mean life (Slurm's fair-share usage).
The queue is ordered as weighted fair queueing orders packets: within a group, jobs go by class, then by
their user's virtual time (a user's k-th waiting job is placed as if the k-1 before it had started: the
user's charge plus their units); along that sequence each job gets the group's virtual time (the group's
charge plus the units before it, over its share), and the groups' sequences are merged by it.

Jobs bigger than their group's entitlement (an 8-GPU job of a group entitled to 3.2 GPUs) come after the
jobs that fit in the shares, unless starting one brings its group closer to its entitlement: such a job
never heads the queue holding every group off its share while GPUs drain for it, and starts on what the
shares leave, when its group's entitlement grows (the others want less), or when it has waited past
``starvation_s``: it then leads its group, which is served in its turn; past twice that it heads its kind.

Preemption: a job takes resources from a running job of a lower class in its own group, or from another
group's job of the same or a lower class when that moves both groups closer to their entitlements (a
nominal GPU quota, else their share of the capacity): the sum of the two groups' distances to their
entitlements must shrink, so two groups never take the same GPUs back and forth. A victim bigger than its
group's entitlement is kept while its group would fall below the entitlement without it (it could never
run otherwise); a group's second big job is not. Borrowed GPUs are taken back this way, as Kueue's cohorts do.
A job that heads its kind for having waited past twice ``starvation_s`` may take units from any group over its
entitlement (by more than half the victim, so it comes closer), a big victim included. Behind the head, a job
whose group is below its entitlement by more than half the job (``reclaims``) takes units back from groups over
theirs by more than half the victim, one round at a time; the admission pass gives it what they free first.
"""
from __future__ import annotations

from collections.abc import Sequence

from services.jobs.policies.base import Active, Pending, State, Usage, charge, class_rank, longest_waiting


class FairShare:
    name = "fairshare"
    heads_kind_after = 2.0  # past ``starvation_s`` a job first leads its group (``order``); past twice that, its kind

    def order(self, queue: Sequence[Pending], running: Sequence[Active], usage: Usage,
              state: State) -> list[Pending]:
        capacity = state.capacity
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
                value = charge(held.get((kind, user), 0), seconds.get(user, 0.0), capacity)
                user_charge[(kind, user)] = value
                group_charge[(kind, group)] = group_charge.get((kind, group), 0.0) + value
        # Users' virtual times, per class and kind: their charge plus the units of their jobs before.
        user_time: dict[int, float] = {}
        queued_units: dict[tuple[int, str, str], float] = {}
        for job in sorted(queue, key=lambda j: j.id):
            key = (class_rank(job.priority), job.kind, job.user)
            before = queued_units.get(key, 0.0)
            user_time[job.id] = user_charge.get((job.kind, job.user), 0.0) + before
            queued_units[key] = before + job.units
        # Each group's sequence: its longest-waiting job once past ``starvation_s`` (it leads its group), then by
        # class and users' times; along it, the group's virtual time (its charge plus the units before, over its
        # share). A job bigger than its group's entitlement (an 8-GPU job of a group entitled to 3.2 GPUs) goes
        # after the jobs that fit in their groups' shares, unless its group holds so little that starting it
        # brings the group closer to its entitlement: it neither heads the queue nor holds the others off their
        # shares while it waits, and runs when its group's entitlement grows, the others' jobs leave room, or it
        # leads its group.
        leaders = {job.id for job in longest_waiting(queue, state.now - capacity.starvation_s,
                                                     lambda job: (job.kind, job.group)).values()}
        group_time: dict[int, tuple[bool, float]] = {}
        placed: dict[tuple[str, str], float] = {}

        def place(job: Pending, deferred: bool) -> None:
            key = (job.kind, job.group)
            group_time[job.id] = (deferred, (group_charge.get(key, 0.0) + placed.get(key, 0.0)) / capacity.share(job.group))
            placed[key] = placed.get(key, 0.0) + job.units

        deferred: list[Pending] = []
        for job in sorted(queue, key=lambda j: (j.id not in leaders, -class_rank(j.priority), user_time[j.id], j.id)):
            entitled = state.entitled(job.kind, job.group)
            holds = state.held[job.kind].get(job.group, 0) + placed.get((job.kind, job.group), 0.0)
            if job.id not in leaders and job.units > entitled + 1e-9 and holds + job.units / 2 > entitled + 1e-9:
                deferred.append(job)
            else:
                place(job, False)
        for job in deferred:
            place(job, True)
        return sorted(queue, key=lambda j: (group_time[j.id], -class_rank(j.priority), user_time[j.id], j.id))

    def reclaims(self, job: Pending, state: State) -> bool:
        """Its group is below its entitlement by more than half the job: starting it brings the group closer."""
        return state.held[job.kind].get(job.group, 0) + job.units / 2 < state.entitled(job.kind, job.group) - 1e-9

    def may_preempt(self, job: Pending, victim: Active, state: State) -> bool:
        if class_rank(victim.priority) > class_rank(job.priority):
            return False
        if victim.group == job.group:
            return class_rank(victim.priority) < class_rank(job.priority)
        kind = job.kind
        other = state.entitled(kind, victim.group)
        if job.queued_at is not None and job.queued_at < state.now - state.capacity.starvation_s * self.heads_kind_after:
            # A job that heads its kind for having starved takes units from groups over their entitlement (a big
            # victim included) rather than waiting while their jobs end and over-share ones backfill the units.
            return state.held[kind].get(victim.group, 0) - victim.units / 2 > other + 1e-9
        if victim.units > other and state.held[kind].get(victim.group, 0) - victim.units < other:
            return False  # bigger than its group's share and all it has: it could never run if share took it back
        own, theirs = state.held[kind].get(job.group, 0), state.held[kind].get(victim.group, 0)
        mine = state.entitled(kind, job.group)
        before = abs(own - mine) + abs(theirs - other)
        after = abs(own + job.units - mine) + abs(theirs - victim.units - other)
        return after < before - 1e-9
