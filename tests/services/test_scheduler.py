"""Who starts next: priority, first come, round-robin between users, caps, no overtaking per resource."""
from __future__ import annotations

from dataclasses import dataclass

from services.jobs.scheduler import Capacity, pick


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
