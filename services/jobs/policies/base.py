"""What every scheduling policy shares: the jobs it weighs, the decision it returns, and the admission pass.

A policy is a pure function ``decide(queue, running, usage, capacity, now) -> Decision``: the service's
supervisor and ``bench/scheduler_sim.py`` call the same code, one with the database's state and the
wall clock, the other with a simulated cluster and clock. A policy says two things (``Policy``): in which
order the queue is served, and which running job a waiting one may take resources from; the admission
pass here does the rest for all of them:

- resources per job: GPUs (all or nothing) or CPU slots, plus memory; a Visdom port each;
- group quotas (nominal GPUs, borrowing idle ones up to a limit) and an optional per-user cap;
- no starvation: the first job of a resource kind that does not fit gets a reservation, and a later job
  may start before it (backfill) only when it cannot delay it: it ends before the reservation by its
  time limit or measured speed, or uses only units the reservation does not need;
- preemption: for the first blocked job of a kind, victims the policy allows (lowest priority class,
  most over share, newest first), pruned to the fewest units freed in excess; behind it, for a job whose group
  the policy says should take units back (``Policy.reclaims``), victims of groups over their entitlement, when
  nothing of that kind is stopping; a job preempted for (``Usage.claims``, kept by the caller from the
  decisions) goes first and starts on what its victims free, whatever the reservation;
- for every queued job: its position, why it waits, and an estimated start (the queue placed in order on
  the units as running jobs are expected to free them).

The whole queue is considered at every decision: a sort, then one walk with a heap per resource kind.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

LOW, NORMAL, HIGH = "low", "normal", "high"
CLASS_PRIORITY = {LOW: -10, NORMAL: 0, HIGH: 10}  # the integer a class name stands for in a submission
LN2 = math.log(2)


def priority_class(priority: int) -> str:
    """Below 0 is ``low``, 0 ``normal``, above 0 ``high`` (which needs an admin's grant)."""
    return LOW if priority < 0 else HIGH if priority > 0 else NORMAL


def class_rank(priority: int) -> int:
    return -1 if priority < 0 else 1 if priority > 0 else 0


@dataclass(frozen=True)
class Pending:
    """A queued job as a policy sees it."""

    id: int
    user: str
    group: str
    priority: int = 0
    gpus: int = 0
    cpu_slots: int = 1  # counted for CPU jobs only (a GPU job's CPU time comes with its GPUs)
    memory_mb: int = 0  # 0: not stated, not counted
    duration_s: float | None = None  # the user's time limit, or an estimate; None: unknown
    preemptible: bool = True
    queued_at: float | None = None  # when it was submitted, or requeued after a preemption (None: unknown)
    nodes: int = 1  # machines it spans: ``gpus`` and ``cpu_slots`` are its total, an equal part on each

    @cached_property
    def kind(self) -> str:
        return "gpu" if self.gpus > 0 else "cpu"

    @cached_property
    def units(self) -> int:
        return self.gpus if self.gpus > 0 else self.cpu_slots


@dataclass(frozen=True)
class Active:
    """A running job: what it holds and when it is expected to end (None: unknown)."""

    id: int
    user: str
    group: str
    priority: int
    gpus: tuple[str, ...] = ()
    cpu_slots: int = 1
    memory_mb: int = 0
    started_at: float = 0.0
    expected_end: float | None = None
    preemptible: bool = True
    stopping: bool = False  # asked to stop (a user, a limit, or a preemption): its resources come back soon

    @property
    def kind(self) -> str:
        return "gpu" if self.gpus else "cpu"

    @property
    def units(self) -> int:
        return len(self.gpus) if self.gpus else self.cpu_slots


@dataclass(frozen=True)
class Quota:
    """A group's nominal GPUs; idle GPUs may be borrowed up to ``limit`` (the nominal when 0)."""

    nominal: int
    limit: int = 0

    @property
    def ceiling(self) -> int:
        return max(self.limit, self.nominal)


@dataclass
class Capacity:
    """The cluster: every GPU and CPU slot (free or not), memory, free Visdom ports, and the admin's rules."""

    gpus: tuple[str, ...] = ()
    cpu_slots: int = 0
    memory_mb: int = 0  # 0: memory is not counted
    free_ports: int = 1 << 30
    shares: dict[str, float] = field(default_factory=dict)  # per group; a group not named has 1
    quotas: dict[str, Quota] = field(default_factory=dict)
    max_running_per_user: int = 0
    half_life_s: float = 7 * 24 * 3600.0
    history_weight: float = 0.25  # how much recent usage counts beside what is held now
    starvation_s: float = 12 * 3600.0  # the longest-waiting job past this heads its kind, whatever the order
    claim_s: float = 120.0  # how long the units of jobs preempted for a job are kept for it (their stop, and some)

    def share(self, group: str) -> float:
        return self.shares.get(group, 1.0)


@dataclass
class Usage:
    """Recent usage per user, decayed with the half-life (Slurm's fair-share usage), and last starts."""

    gpu_seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    last_start: dict[str, float] = field(default_factory=dict)
    claims: dict[int, float] = field(default_factory=dict)  # queued job -> when running jobs were preempted for it

    def seconds(self, kind: str) -> dict[str, float]:
        return self.gpu_seconds if kind == "gpu" else self.cpu_seconds


@dataclass(frozen=True)
class Wait:
    position: int  # 1: the next job the policy would start
    reason: str
    estimated_start: float | None  # None: unknown (a job ahead has no time limit and no measured speed)


@dataclass
class Decision:
    starts: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # job id, the GPUs it gets
    preempt: list[tuple[int, int]] = field(default_factory=list)  # (victim, the job it makes room for)
    waits: dict[int, Wait] = field(default_factory=dict)


class Policy(Protocol):
    """The two things that differ between policies."""

    name: str
    heads_kind_after: float  # the longest-waiting job past this many times ``starvation_s`` heads its kind

    def order(self, queue: Sequence[Pending], running: Sequence[Active], usage: Usage,
              state: State) -> list[Pending]:
        """The whole queue in the order jobs should start (``state``: the capacity, what each group holds and
        wants, before any start)."""

    def may_preempt(self, job: Pending, victim: Active, state: State) -> bool:
        """May ``victim`` be stopped and requeued so that ``job`` starts?"""

    def reclaims(self, job: Pending, state: State) -> bool:
        """May ``job``, not the head of its kind, preempt other groups' jobs (``may_preempt``, from groups over
        their entitlement) to bring its group to its own?"""


def charge(held: float, decayed_seconds: float, capacity: Capacity) -> float:
    """Units held now plus, weighted, the recent average (decayed unit-seconds over the half-life's mean
    life): what is held keeps groups near their shares now, the history evens them out over days."""
    return held + capacity.history_weight * decayed_seconds * LN2 / capacity.half_life_s


def decayed(value: float, units: float, dt: float, half_life_s: float) -> float:
    """Decayed usage after ``dt`` seconds of holding ``units``: the old value halves every half-life, and
    what was used meanwhile is added with the same decay (the exact integral, whatever the tick)."""
    keep = 0.5 ** (dt / half_life_s)
    return value * keep + units * half_life_s / LN2 * (1 - keep)


@dataclass
class State:
    """What the admission pass tracks while it walks the queue; policies read it in ``may_preempt``."""

    capacity: Capacity
    held: dict[str, dict[str, int]]  # kind -> group -> units held (running and stopping jobs)
    demand: dict[str, dict[str, int]]  # kind -> group -> units its queued and running jobs want
    now: float = 0.0  # the decision's time
    _entitled: dict[str, dict[str, float]] = field(default_factory=dict)

    def entitled(self, kind: str, group: str) -> float:
        """A group's units: its nominal GPU quota when it has one, else its share of the capacity water-filled
        over the groups' demand (no group is entitled to more than it wants; the rest goes to the others)."""
        quota = self.capacity.quotas.get(group) if kind == "gpu" else None
        if quota is not None:
            return float(quota.nominal)
        if kind not in self._entitled:
            total = len(self.capacity.gpus) if kind == "gpu" else self.capacity.cpu_slots
            self._entitled[kind] = water_fill(self.demand[kind], self.capacity.share, total)
        return self._entitled[kind].get(group, 0.0)

    def over_share(self, kind: str, group: str) -> float:
        """Units a group holds beyond what it is entitled to (negative: below)."""
        return self.held[kind].get(group, 0) - self.entitled(kind, group)


def water_fill(demand: dict[str, int], share: Callable[[str], float], total: float) -> dict[str, float]:
    """``total`` units divided by share, none given to a group beyond its demand (the rest goes to the others)."""
    result = {group: 0.0 for group in demand}
    active = {group for group, wanted in demand.items() if wanted > 0}
    remaining = float(total)
    while active and remaining > 1e-9:
        weight = sum(share(group) for group in active)
        offer = {group: remaining * share(group) / weight for group in active}
        capped = {group for group in active if offer[group] >= demand[group]}
        if not capped:
            for group in active:
                result[group] = offer[group]
            break
        for group in capped:
            remaining -= demand[group]
            result[group] = float(demand[group])
        active -= capped
    return result


def describe_units(kind: str, n: int) -> str:
    if kind == "gpu":
        return f"{n} GPU" + ("s" if n != 1 else "")
    return f"{n} CPU slot" + ("s" if n != 1 else "")


def machine(gpu: str) -> str:
    """The machine of a GPU: the name before its last ``:`` (the ray executor's ``<node>:<index>``; a local GPU's
    index has none: all are this machine's)."""
    return gpu.rpartition(":")[0]


def pick_gpus(free: Sequence[str], count: int, nodes: int) -> tuple[str, ...] | None:
    """``count`` of the ``free`` GPUs, an equal part on each of ``nodes`` machines (the first machines, in
    capacity order, with that many free; the first GPUs of each); None when not that many machines have it."""
    per = count // nodes
    on: dict[str, list[str]] = {}
    for gpu in free:
        on.setdefault(machine(gpu), []).append(gpu)
    chosen = [gpus[:per] for gpus in on.values() if len(gpus) >= per][:nodes]
    return tuple(gpu for gpus in chosen for gpu in gpus) if len(chosen) == nodes else None


def decide(policy: Policy, queue: Sequence[Pending], running: Sequence[Active], usage: Usage,
           capacity: Capacity, now: float) -> Decision:
    """Which jobs start now (with their GPUs), which running jobs are preempted for whom, and for every other
    queued job its position, reason and estimated start."""
    held: dict[str, dict[str, int]] = {"gpu": {}, "cpu": {}}
    demand: dict[str, dict[str, int]] = {"gpu": {}, "cpu": {}}
    running_count: dict[str, int] = {}
    for run in running:
        held[run.kind][run.group] = held[run.kind].get(run.group, 0) + run.units
        demand[run.kind][run.group] = demand[run.kind].get(run.group, 0) + run.units
        running_count[run.user] = running_count.get(run.user, 0) + 1
    for job in queue:
        demand[job.kind][job.group] = demand[job.kind].get(job.group, 0) + job.units
    state = State(capacity, held, demand, now)
    ordered = _starving_first(policy.order(queue, running, usage, state),
                              now - capacity.starvation_s * policy.heads_kind_after)
    # A job that running jobs were preempted for goes first, and may start on what they free even if that
    # delays the head's reservation: otherwise another job (or the head) takes the units, and the victims'
    # group takes them back at the next pass.
    claimed = {job_id for job_id, at in usage.claims.items() if now - at <= capacity.claim_s}
    if claimed:
        ordered = [*(job for job in ordered if job.id in claimed), *(job for job in ordered if job.id not in claimed)]
    busy = {gpu for run in running for gpu in run.gpus}
    free_gpus = [gpu for gpu in capacity.gpus if gpu not in busy]
    free = {"gpu": len(free_gpus), "cpu": capacity.cpu_slots - sum(run.units for run in running if run.kind == "cpu")}
    stopping = {"gpu": 0, "cpu": 0}  # units of jobs asked to stop: back soon
    for run in running:
        stopping[run.kind] += run.units if run.stopping else 0
    quiet = {kind: not units for kind, units in stopping.items()}  # nothing stopping: a group may take units back
    tried: set[tuple] = set()
    memory = capacity.memory_mb - sum(run.memory_mb for run in running) if capacity.memory_mb else math.inf
    ports = capacity.free_ports
    timeline = Timeline(now, free, running)
    reservation: dict[str, tuple[Pending, float, int]] = {}  # kind -> (head job, its start, units it leaves spare)
    victims: set[int] = set()
    decision = Decision()
    position = 0
    for job in ordered:
        kind = job.kind
        position += 1
        total = len(capacity.gpus) if kind == "gpu" else capacity.cpu_slots
        if job.units > total:
            decision.waits[job.id] = Wait(position, f"needs {describe_units(kind, job.units)}; "
                                                    f"there are {total}", None)
            continue
        reason = None
        if capacity.max_running_per_user and running_count.get(job.user, 0) >= capacity.max_running_per_user:
            reason = f"user has {running_count[job.user]} jobs running (cap {capacity.max_running_per_user})"
        quota = capacity.quotas.get(job.group) if kind == "gpu" else None
        if reason is None and quota is not None and held[kind].get(job.group, 0) + job.units > quota.ceiling:
            reason = f"group quota {held[kind].get(job.group, 0)} of {quota.ceiling} GPUs in use"
        gpus = pick_gpus(free_gpus, job.gpus, job.nodes) if kind == "gpu" and free[kind] >= job.units else ()
        fits = free[kind] >= job.units and gpus is not None and job.memory_mb <= memory and ports > 0
        if reason is None and fits and kind in reservation:
            head, start, spare = reservation[kind]
            if job.duration_s is not None and now + job.duration_s <= start:
                pass  # ends before the head's reservation: cannot delay it
            elif job.units <= spare:
                reservation[kind] = (head, start, spare - job.units)
            elif job.id not in claimed:
                reason = _behind(policy, job, head, now - capacity.starvation_s)
        if reason is None and fits:
            taken = set(gpus)
            free_gpus = [gpu for gpu in free_gpus if gpu not in taken]
            free[kind] -= job.units
            memory -= job.memory_mb
            ports -= 1
            held[kind][job.group] = held[kind].get(job.group, 0) + job.units
            running_count[job.user] = running_count.get(job.user, 0) + 1
            timeline.place(job, now)
            decision.starts.append((job.id, gpus))
            position -= 1  # a job that starts leaves the queue
            continue
        if reason is None:
            if free[kind] >= job.units and gpus is None:
                reason = f"needs {describe_units(kind, job.units // job.nodes)} free on each of {job.nodes} machines" \
                    if job.nodes > 1 else f"needs {describe_units(kind, job.units)} free on one machine"
            elif free[kind] >= job.units:
                reason = "waiting for a Visdom port" if ports <= 0 else \
                    f"needs {job.memory_mb} MB of memory, {max(memory, 0):.0f} MB free"
            else:
                reason = f"needs {describe_units(kind, job.units)}, {max(free[kind], 0)} free"
            if kind not in reservation:  # the head of its kind: preempt for it, or reserve the units it waits for
                chosen = _victims(policy, job, running, state, free[kind] + stopping[kind], victims)
                _preempt(decision, job, chosen, victims, stopping, held, timeline, now)
                if chosen:
                    reason += f"; preempting job {', '.join(str(victim.id) for victim in chosen)}"
                elif stopping[kind] and free[kind] + stopping[kind] >= job.units:
                    reason += "; waiting for a stopping job to save its checkpoint"
                start = timeline.place(job)
                spare = free[kind] + stopping[kind] + sum(
                    run.units for run in running if run.kind == kind and not run.stopping and run.id not in victims
                    and run.expected_end is not None and run.expected_end <= start) - job.units
                reservation[kind] = (job, start, max(spare, 0))
                decision.waits[job.id] = Wait(position, reason, None if start == math.inf else start)
                continue
            # a like job (kind, group, class, size, starved or not) found no victims since the last start or
            # preemption: neither would this one (one look at the running set each, not one a queued job)
            like = (kind, job.group, class_rank(job.priority), job.units, job.queued_at is not None and
                    job.queued_at < now - capacity.starvation_s * policy.heads_kind_after,
                    len(decision.starts) + len(decision.preempt))
            if quiet[kind] and like not in tried and job.id not in claimed and policy.reclaims(job, state):
                # Behind the head, a group below its entitlement takes units back from groups over theirs (by more
                # than half the victim), once nothing is stopping; the job gets them first (``claimed``).
                over = [run for run in running if run.group != job.group
                        and state.over_share(kind, run.group) - run.units / 2 > 1e-9]
                chosen = _victims(policy, job, over, state, max(free[kind], 0), victims)
                _preempt(decision, job, chosen, victims, stopping, held, timeline, now)
                if chosen:
                    held[kind][job.group] = held[kind].get(job.group, 0) + job.units  # its group's, soon
                    reason += f"; preempting job {', '.join(str(victim.id) for victim in chosen)}"
                else:
                    tried.add(like)
        start = timeline.place(job)
        decision.waits[job.id] = Wait(position, reason, None if start == math.inf else start)
    return decision


def _preempt(decision: Decision, job: Pending, chosen: list[Active], victims: set[int], stopping: dict[str, int],
             held: dict[str, dict[str, int]], timeline: Timeline, now: float) -> None:
    """Stop ``chosen`` for ``job``: their units come back soon and no longer count for their groups."""
    for victim in chosen:
        decision.preempt.append((victim.id, job.id))
        victims.add(victim.id)
        stopping[victim.kind] += victim.units
        held[victim.kind][victim.group] -= victim.units
        timeline.release(victim, now)


def longest_waiting(jobs: Iterable[Pending], before: float, key: Callable[[Pending], Hashable]) -> dict[Hashable, Pending]:
    """Per ``key``, the job that has waited longest, of those queued before ``before`` (the starvation rule)."""
    oldest: dict[Hashable, Pending] = {}
    for job in jobs:
        k = key(job)
        if job.queued_at is not None and job.queued_at < before and (
                k not in oldest or (job.queued_at, job.id) < (oldest[k].queued_at, oldest[k].id)):
            oldest[k] = job
    return oldest


def _starving_first(ordered: list[Pending], before: float) -> list[Pending]:
    """No starvation: per resource kind, the job that has waited longest, once queued before ``before``, goes
    first (so it is the head that gets the reservation), whatever the policy's order says."""
    oldest = longest_waiting(ordered, before, lambda job: job.kind)
    if not oldest:
        return ordered
    first = sorted(oldest.values(), key=lambda job: job.queued_at)
    moved = {job.id for job in first}
    return [*first, *(job for job in ordered if job.id not in moved)]


def _behind(policy: Policy, job: Pending, head: Pending, starving_before: float) -> str:
    """Why a job that would fit waits for the reservation of the head of its kind."""
    if head.queued_at is not None and head.queued_at < starving_before:
        return f"behind job {head.id}, which has waited longer than the starvation time"
    if head.user == job.user:
        return f"behind your job {head.id}"
    if policy.name == "fairshare" and class_rank(head.priority) == class_rank(job.priority):
        return f"user over fair share; behind job {head.id}"
    return f"behind job {head.id} ({priority_class(head.priority)})"


class Timeline:
    """When each unit (GPU or CPU slot) is free: now for a free one, a running job's expected end for its own
    (infinity when unknown). Jobs placed in queue order take the units that free first, which gives their
    estimated start. A heap per kind; a preempted job's entries are skipped when they come up."""

    def __init__(self, now: float, free: dict[str, int], running: Sequence[Active]) -> None:
        self.now = now
        self.units: dict[str, list[tuple[float, int]]] = {kind: [(now, 0)] * max(n, 0) for kind, n in free.items()}
        for run in running:
            end = now if run.stopping else max(run.expected_end if run.expected_end is not None else math.inf, now)
            self.units[run.kind].extend([(end, run.id)] * run.units)
        for heap in self.units.values():
            heapq.heapify(heap)
        self.released: set[int] = set()

    def release(self, run: Active, at: float) -> None:
        self.released.add(run.id)
        for _ in range(run.units):
            heapq.heappush(self.units[run.kind], (at, 0))

    def place(self, job: Pending, start: float | None = None) -> float:
        """Take the job's units; its start (``start`` when given, else when they are all free)."""
        heap = self.units[job.kind]
        taken = []
        while len(taken) < job.units and heap:
            at, tag = heapq.heappop(heap)
            if tag not in self.released:
                taken.append(at)
        if len(taken) < job.units:
            return math.inf
        begin = max(taken) if start is None else start
        end = begin + job.duration_s if job.duration_s is not None else math.inf
        for _ in taken:
            heapq.heappush(heap, (end, 0))
        return begin


def _victims(policy: Policy, job: Pending, running: Sequence[Active], state: State, available: int,
             taken: set[int]) -> list[Active]:
    """Running jobs to stop so that ``job`` fits: lowest priority class, most over share, one that frees no more
    than is missing, newest first; victims not needed after all are dropped (largest first), so as few units
    as possible are freed in excess."""
    candidates = [run for run in running if run.kind == job.kind and run.preemptible and not run.stopping
                  and run.id not in taken and policy.may_preempt(job, run, state)]
    if not candidates or available + sum(run.units for run in candidates) < job.units:
        return []
    need = job.units - available
    candidates.sort(key=lambda run: (class_rank(run.priority), -state.over_share(run.kind, run.group),
                                     run.units > need, -run.started_at, run.id))
    chosen: list[Active] = []
    freed = available
    for run in candidates:
        if freed >= job.units:
            break
        chosen.append(run)
        freed += run.units
    for run in sorted(chosen, key=lambda r: -r.units):
        if freed - run.units >= job.units:
            chosen.remove(run)
            freed -= run.units
    return chosen
