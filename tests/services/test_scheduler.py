"""Who starts next: priority, first come, round-robin between users, caps, no overtaking per resource."""
from __future__ import annotations

import random
from dataclasses import dataclass

from services.jobs.scheduler import Capacity, most_starts, pick


@dataclass
class J:
    id: int
    user: str = "u"
    priority: int = 0
    gpus_requested: int = 0


def ids(chosen):
    return [job.id for job, _ in chosen]


def test_priority_then_first_come_within_cpu_slots():
    queue = [J(1), J(2, priority=5), J(3), J(4, priority=5)]
    assert ids(pick(queue, Capacity([], free_cpu_slots=3, free_ports=10))) == [2, 4, 1]


def test_round_robin_between_users_at_equal_priority():
    queue = [J(1, "a"), J(2, "a"), J(3, "a"), J(4, "b"), J(5, "c")]
    assert ids(pick(queue, Capacity([], 4, 10))) == [1, 4, 5, 2]
    # a user with jobs already running comes after the others; one who started last waits longest
    cap = Capacity([], 2, 10, running_per_user={"a": 1})
    assert ids(pick(queue, cap)) == [4, 5]
    cap = Capacity([], 1, 10, last_start_per_user={"a": 100.0, "b": 50.0})
    assert ids(pick(queue, cap)) == [5]


def test_per_user_cap_passes_over_without_blocking_others():
    queue = [J(1, "a"), J(2, "a"), J(3, "b")]
    cap = Capacity([], 5, 10, running_per_user={"a": 1}, max_running_per_user=2)
    assert ids(pick(queue, cap)) == [3, 1]


def test_gpus_are_assigned_and_a_big_job_is_not_overtaken():
    queue = [J(1, gpus_requested=1), J(2, gpus_requested=2), J(3, gpus_requested=1), J(4)]
    chosen = pick(queue, Capacity(["0", "1"], free_cpu_slots=1, free_ports=10))
    assert [(job.id, gpus) for job, gpus in chosen] == [(1, ("0",)), (4, ())]


def test_nothing_starts_without_a_port():
    assert pick([J(1), J(2)], Capacity([], 2, free_ports=1)) != [] and pick([J(1)], Capacity([], 2, 0)) == []


def reference_pick(queued, cap):
    """The policy as first written (a scan of the whole level per pick): what ``pick`` must choose."""
    running, last_start = dict(cap.running_per_user), dict(cap.last_start_per_user)
    free_gpus, cpu_slots, ports = list(cap.free_gpus), cap.free_cpu_slots, cap.free_ports
    blocked, chosen = {"gpu": False, "cpu": False}, []
    for priority in sorted({job.priority for job in queued}, reverse=True):
        level = [job for job in queued if job.priority == priority]
        while level and ports > 0:
            job = min(level, key=lambda j: (running.get(j.user, 0), last_start.get(j.user, 0.0), j.id))
            level.remove(job)
            kind = "gpu" if job.gpus_requested > 0 else "cpu"
            if blocked[kind] or (cap.max_running_per_user and running.get(job.user, 0) >= cap.max_running_per_user):
                continue
            if not (job.gpus_requested <= len(free_gpus) if kind == "gpu" else cpu_slots > 0):
                blocked[kind] = True
                continue
            gpus = tuple(free_gpus[:job.gpus_requested])
            del free_gpus[:job.gpus_requested]
            cpu_slots, ports = cpu_slots - (kind == "cpu"), ports - 1
            running[job.user] = running.get(job.user, 0) + 1
            last_start[job.user] = float("inf")
            chosen.append((job, gpus))
    return chosen


def random_case(rng: random.Random) -> tuple[list[J], Capacity]:
    users = [f"u{i}" for i in range(rng.randint(1, 5))]
    queue = [J(i, rng.choice(users), rng.choice([0, 0, 5]), rng.choice([0, 0, 1, 2])) for i in range(1, rng.randint(1, 40))]
    rng.shuffle(queue)
    cap = Capacity([str(g) for g in range(rng.randint(0, 4))], rng.randint(0, 4), rng.randint(0, 8),
                   running_per_user={u: rng.randint(0, 2) for u in users if rng.random() < 0.5},
                   last_start_per_user={u: rng.random() for u in users if rng.random() < 0.5},
                   max_running_per_user=rng.choice([0, 0, 2]))
    return queue, cap


def test_pick_chooses_what_the_policy_says_and_the_heads_of_each_queue_suffice():
    rng = random.Random(7)
    for _ in range(2000):
        queue, cap = random_case(rng)
        expected = reference_pick(queue, cap)
        assert pick(queue, cap) == expected
        # What the supervisor reads: the first most_starts(cap) jobs of each priority, user and kind.
        seen: dict[tuple, int] = {}
        heads = []
        for job in sorted(queue, key=lambda j: j.id):
            group = (job.priority, job.user, job.gpus_requested > 0)
            seen[group] = seen.get(group, 0) + 1
            if seen[group] <= most_starts(cap):
                heads.append(job)
        assert pick(heads, cap) == expected


def test_a_long_queue_of_one_user_does_not_hide_another_users_job():
    queue = [J(i, "flood") for i in range(1, 10_002)] + [J(10_002, "other")]
    cap = Capacity([], free_cpu_slots=1, free_ports=10, running_per_user={"flood": 1})
    assert ids(pick(queue, cap)) == [10_002]
    # thousands of users with one job each: still one pass
    many = [J(i, f"user{i}") for i in range(10_000)]
    assert ids(pick(many, Capacity([], free_cpu_slots=3, free_ports=10))) == [0, 1, 2]
