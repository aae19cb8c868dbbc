"""The scheduling policies as pure functions: order, fair share, quotas, preemption, backfill, reasons."""
from __future__ import annotations

import random

import pytest

from services.jobs.policies import POLICIES, decide_with, policy
from services.jobs.policies.base import Active, Capacity, Pending, Quota, Usage, decayed

GPUS = tuple(str(i) for i in range(8))
GROUP_OF = {"a": "g1", "b": "g1", "c": "g2", "d": "g3"}


def P(id, user="u", group="g", priority=0, gpus=0, **kw):
    return Pending(id, user, group, priority, gpus, **kw)


def A(id, user="u", group="g", priority=0, gpus=(), **kw):
    return Active(id, user, group, priority, tuple(gpus), **kw)


def started(decision):
    return [job_id for job_id, _ in decision.starts]


def test_unknown_policy_names_the_valid_ones():
    with pytest.raises(ValueError, match="fifo, priority, fairshare"):
        policy("lottery")


def test_fifo_is_first_come_and_never_preempts():
    queue = [P(3, priority=10), P(1), P(2, priority=-10)]
    decision = decide_with("fifo", queue, [A(9, priority=-10)], Usage(), Capacity(cpu_slots=3), 0)
    assert started(decision) == [1, 2] and decision.preempt == []
    assert decision.waits[3].position == 1 and decision.waits[3].reason == "needs 1 CPU slot, 0 free"


def test_gpus_of_a_job_come_from_one_machine_or_an_equal_part_of_each_it_spans():
    """The ray executor's GPUs are ``<node>:<index>``: a job's GPUs all on one node, or (``nodes``) as many on each."""
    capacity = Capacity(gpus=("a:0", "b:0", "b:1", "c:0", "c:1", "c:2"))
    queue = [P(1, gpus=2), P(2, gpus=2, nodes=2), P(3, gpus=2, nodes=2)]
    decision = decide_with("fifo", queue, [], Usage(), capacity, 0)
    assert decision.starts == [(1, ("b:0", "b:1")), (2, ("a:0", "c:0"))]
    assert decision.waits[3].reason == "needs 1 GPU free on each of 2 machines"  # two are free, both on c
    spread = decide_with("fifo", [P(4, gpus=4, nodes=2)], [A(9, gpus=("b:0",))], Usage(), capacity, 0)
    assert spread.starts == [] and spread.waits[4].reason == "needs 2 GPUs free on each of 2 machines"


def test_priority_orders_by_priority_then_round_robin_between_users():
    queue = [P(1, "a"), P(2, "a"), P(3, "a"), P(4, "b"), P(5, "c"), P(6, "d", priority=5)]
    assert started(decide_with("priority", queue, [], Usage(), Capacity(cpu_slots=5), 0)) == [6, 1, 4, 5, 2]
    # a user with jobs running comes after the others; of two idle users, the one who started last waits
    usage = Usage(last_start={"b": 100.0, "c": 50.0})
    running = [A(9, "a")]
    assert started(decide_with("priority", queue, running, usage, Capacity(cpu_slots=3), 0)) == [6, 5]


def test_a_big_gpu_job_is_not_overtaken_and_gets_all_its_gpus_or_none():
    queue = [P(1, gpus=1), P(2, gpus=7), P(3, gpus=1)]
    running = [A(9, gpus=("0", "1", "2", "3", "4", "5"), expected_end=100.0, preemptible=False)]
    decision = decide_with("fifo", queue, running, Usage(), Capacity(gpus=GPUS), 0)
    assert decision.starts == [(1, ("6",))]
    assert decision.waits[2].reason == "needs 7 GPUs, 1 free" and decision.waits[2].estimated_start == 100.0
    # job 3 would fit on the last GPU but has no time limit: it would delay job 2
    assert decision.waits[3].reason == "behind your job 2" and decision.waits[3].position == 2


def test_backfill_only_when_it_cannot_delay_the_reserved_job():
    running = [A(9, "x", gpus=("0", "1", "2", "3", "4", "5"), expected_end=100.0, preemptible=False)]
    queue = [P(1, "a", gpus=8), P(2, "b", gpus=1, duration_s=50.0), P(3, "c", gpus=1, duration_s=500.0)]
    decision = decide_with("fifo", queue, running, Usage(), Capacity(gpus=GPUS), 0)
    assert started(decision) == [2]  # ends at 50, before the reservation at 100
    assert decision.waits[3].reason == "behind job 1 (normal)"
    # with GPUs to spare at the reservation (8 free at 100, 4 needed), a long job may take them now
    queue = [P(1, "a", gpus=4), P(3, "c", gpus=1, duration_s=500.0)]
    running = [A(9, "x", gpus=("0", "1", "2", "3", "4"), expected_end=100.0, preemptible=False)]
    assert started(decide_with("fifo", queue, running, Usage(), Capacity(gpus=GPUS), 0)) == [3]


def test_estimated_starts_follow_the_queue_on_the_units_as_they_free():
    running = [A(9, expected_end=30.0, preemptible=False), A(8, expected_end=60.0, preemptible=False)]
    queue = [P(1, duration_s=100.0), P(2, duration_s=10.0), P(3)]
    waits = decide_with("fifo", queue, running, Usage(), Capacity(cpu_slots=2), 0).waits
    assert [(waits[i].position, waits[i].estimated_start) for i in (1, 2, 3)] == [(1, 30.0), (2, 60.0), (3, 70.0)]
    unknown = decide_with("fifo", queue, [A(9, preemptible=False), A(8, preemptible=False)], Usage(),
                          Capacity(cpu_slots=2), 0).waits
    assert unknown[1].estimated_start is None and unknown[1].reason == "needs 1 CPU slot, 0 free"


def test_fairshare_divides_by_group_shares_then_equally_between_a_groups_users():
    queue = [P(i, user, group, gpus=1) for i, (user, group) in enumerate(
        [("a1", "big")] * 20 + [("a2", "big")] * 20 + [("b1", "small")] * 20, start=1)]
    capacity = Capacity(gpus=GPUS, shares={"big": 3.0, "small": 1.0})
    decision = decide_with("fairshare", queue, [], Usage(), capacity, 0)
    users = [next(job.user for job in queue if job.id == job_id) for job_id in started(decision)]
    assert users.count("b1") == 2 and users.count("a1") == 3 and users.count("a2") == 3


def test_fairshare_remembers_recent_usage():
    queue = [P(1, "heavy", "g1"), P(2, "light", "g2")]
    usage = Usage(cpu_seconds={"heavy": 3600.0 * 10})
    decision = decide_with("fairshare", queue, [], usage, Capacity(cpu_slots=1, half_life_s=3600.0), 0)
    assert started(decision) == [2]
    assert decision.waits[1].reason == "needs 1 CPU slot, 0 free"


def test_decayed_usage_halves_every_half_life_and_adds_what_was_used():
    assert decayed(100.0, 0, 60.0, 60.0) == pytest.approx(50.0)
    # holding one unit forever converges to the half-life's mean life; two half ticks make one whole
    assert decayed(0.0, 1, 1e9, 60.0) == pytest.approx(60.0 / 0.6931471805599453)
    assert decayed(decayed(7.0, 2, 30.0, 60.0), 2, 30.0, 60.0) == pytest.approx(decayed(7.0, 2, 60.0, 60.0))


def test_a_high_job_preempts_the_newest_low_job_that_frees_enough():
    running = [A(1, "a", priority=-10, started_at=10.0), A(2, "a", priority=-10, started_at=20.0),
               A(3, "b", priority=0, started_at=30.0)]
    decision = decide_with("fairshare", [P(9, "c", priority=10)], running, Usage(), Capacity(cpu_slots=3), 40.0)
    assert decision.preempt == [(2, 9)] and decision.starts == []
    assert decision.waits[9].reason == "needs 1 CPU slot, 0 free; preempting job 2"
    # while the victim saves its checkpoint nothing more is preempted
    stopping = [running[0], A(2, "a", priority=-10, started_at=20.0, stopping=True), running[2]]
    again = decide_with("fairshare", [P(9, "c", priority=10)], stopping, Usage(), Capacity(cpu_slots=3), 41.0)
    assert again.preempt == [] and "save its checkpoint" in again.waits[9].reason
    # jobs that may not be preempted are not
    fixed = [A(1, "a", priority=-10, preemptible=False)]
    assert decide_with("fairshare", [P(9, "c", priority=10)], fixed, Usage(), Capacity(cpu_slots=1), 0).preempt == []


def test_victims_free_the_fewest_gpus_in_excess():
    running = [A(1, "a", priority=-10, gpus=("0", "1", "2", "3"), started_at=5.0),
               A(2, "a", priority=-10, gpus=("4", "5"), started_at=1.0),
               A(3, "a", priority=-10, gpus=("6", "7"), started_at=2.0)]
    decision = decide_with("fairshare", [P(9, "c", priority=10, gpus=2)], running, Usage(), Capacity(gpus=GPUS), 9)
    assert decision.preempt == [(3, 9)]  # the newest low job freeing exactly 2, not the 4-GPU one


def test_a_group_borrows_idle_gpus_up_to_its_limit_and_the_owner_takes_them_back():
    quotas = {"vision": Quota(4, 6), "speech": Quota(4, 4)}
    queue = [P(i, "v", "vision", gpus=1) for i in range(1, 9)]
    decision = decide_with("fairshare", queue, [], Usage(), Capacity(gpus=GPUS, quotas=quotas), 0)
    assert len(decision.starts) == 6 and decision.waits[7].reason == "group quota 6 of 6 GPUs in use"
    running = [A(i, "v", "vision", gpus=(str(i - 1),), started_at=float(i)) for i in range(1, 7)]
    queue = [P(20, "s", "speech", gpus=2)]
    decision = decide_with("fairshare", queue, running, Usage(), Capacity(gpus=GPUS, quotas=quotas), 10)
    assert decision.starts == [(20, ("6", "7"))]
    queue = [P(21, "s", "speech", gpus=2), P(22, "s", "speech", gpus=2)]
    running += [A(20, "s", "speech", gpus=("6", "7"))]
    decision = decide_with("fairshare", queue, running, Usage(), Capacity(gpus=GPUS, quotas=quotas), 10)
    assert decision.preempt == [(6, 21), (5, 21)]  # vision's newest borrowed GPUs
    assert decision.waits[22].reason == "needs 2 GPUs, 0 free"


def test_no_preemption_within_a_group_or_of_a_group_within_its_share():
    running = [A(1, "a", "g1", gpus=("0", "1", "2", "3")), A(2, "b", "g2", gpus=("4", "5", "6", "7"))]
    decision = decide_with("fairshare", [P(9, "c", "g1", gpus=1), P(10, "d", "g3", gpus=8)], running, Usage(),
                           Capacity(gpus=GPUS), 0)
    assert decision.preempt == []


def test_per_user_cap_and_ports_and_memory_are_reasons_too():
    queue = [P(1, "a"), P(2, "a"), P(3, "b", memory_mb=900), P(4, "c")]
    capacity = Capacity(cpu_slots=4, memory_mb=1000, max_running_per_user=1, free_ports=2)
    decision = decide_with("fifo", queue, [A(9, "z", memory_mb=200, preemptible=False)], Usage(), capacity, 0)
    assert started(decision) == [1, 4]
    assert decision.waits[2].reason == "user has 1 jobs running (cap 1)"
    assert decision.waits[3].reason == "needs 900 MB of memory, 800 MB free"


def test_every_policy_weighs_the_whole_queue():
    """10,000 queued jobs of one user, then one of another: fair share and priority start the other's first."""
    queue = [P(i, "flood", "f") for i in range(1, 10_001)] + [P(10_001, "other", "o")]
    for name in ("priority", "fairshare"):
        decision = decide_with(name, queue, [A(0, "flood", "f")], Usage(), Capacity(cpu_slots=2), 0)
        assert started(decision) == [10_001] and len(decision.waits) == 10_000


def test_decisions_are_consistent_on_random_clusters():
    """Whatever the state: nothing over capacity, no GPU given twice, every queued job started or explained,
    positions 1..n, and victims only of lower class or over-share groups."""
    rng = random.Random(3)
    for _ in range(300):
        gpus = tuple(str(i) for i in range(rng.choice([0, 2, 4, 8])))
        free = list(gpus)
        running = []
        for i in range(rng.randint(0, 6)):
            n = rng.choice([0, 1, 2])
            if n and len(free) >= n:
                held, free = tuple(free[:n]), free[n:]
            else:
                held = ()
            user = rng.choice("abc")
            running.append(A(1000 + i, user, GROUP_OF[user], rng.choice([-10, 0, 10]),
                             held, started_at=rng.random(), expected_end=rng.choice([None, 50.0])))
        slots = sum(1 for run in running if not run.gpus) + rng.randint(0, 2)
        users = [rng.choice("abcd") for _ in range(30)]
        queue = [P(i, users[i], GROUP_OF[users[i]], rng.choice([-10, 0, 10]),
                   rng.choice([0, 0, 1, 2]) if gpus else 0, duration_s=rng.choice([None, 10.0]))
                 for i in range(rng.randint(0, 30))]
        capacity = Capacity(gpus=gpus, cpu_slots=slots, quotas={"g1": Quota(2, 3)} if rng.random() < 0.3 else {})
        for name in POLICIES:
            decision = decide_with(name, queue, running, Usage(), capacity, 0)
            given = [gpu for _, assigned in decision.starts for gpu in assigned]
            assert len(given) == len(set(given)) and not set(given) & {g for r in running for g in r.gpus}
            cpu_starts = sum(1 for job in queue if job.id in dict(decision.starts) and not job.gpus)
            assert cpu_starts <= slots - sum(1 for run in running if not run.gpus)
            assert set(dict(decision.starts)) | set(decision.waits) == {job.id for job in queue}
            assert sorted(w.position for w in decision.waits.values()) == list(range(1, len(decision.waits) + 1))
            if name == "fifo":
                assert decision.preempt == []


def test_a_job_bigger_than_its_groups_share_is_not_taken_back_for_share():
    """nlp (share 1 of 4: 2 GPUs) runs an 8-GPU job; vision's 1-GPU job waits rather than preempting it (unless
    nlp would keep its share without it)."""
    running = [A(1, "n", "nlp", gpus=GPUS, started_at=5.0)]
    capacity = Capacity(gpus=GPUS, shares={"vision": 3.0, "nlp": 1.0})
    decision = decide_with("fairshare", [P(9, "v", "vision", gpus=1)], running, Usage(), capacity, 10.0)
    assert decision.preempt == []
    smaller = [A(1, "n", "nlp", gpus=GPUS[:6], started_at=5.0), A(2, "n", "nlp", gpus=GPUS[6:], started_at=6.0)]
    decision = decide_with("fairshare", [P(9, "v", "vision", gpus=2)], smaller, Usage(), capacity, 10.0)
    assert decision.preempt == [(2, 9)]
    # two 4-GPU jobs: nlp keeps one (its share of 2 GPUs would never fit it), the other goes back to the queue
    two = [A(1, "n", "nlp", gpus=GPUS[:4], started_at=5.0), A(2, "n", "nlp", gpus=GPUS[4:], started_at=6.0)]
    wants = [P(9, "v", "vision", gpus=4), P(10, "v", "vision", gpus=4)]  # vision is entitled to 6, nlp to 2
    assert decide_with("fairshare", wants, two, Usage(), capacity, 10.0).preempt == [(2, 9)]
    assert decide_with("fairshare", wants, two[:1], Usage(), capacity, 10.0).preempt == []


def test_the_longest_waiting_job_past_the_starvation_time_heads_its_kind():
    capacity = Capacity(gpus=GPUS, starvation_s=3600.0)
    queue = [P(1, "a", gpus=8, queued_at=0.0), P(2, "b", gpus=1, queued_at=5000.0)]
    running = [A(9, "z", gpus=GPUS[:4], expected_end=6000.0, preemptible=False)]
    usage = Usage(gpu_seconds={"a": 1e9})  # a used far more than b: fair share alone would serve b first
    fresh = decide_with("fairshare", queue, running, usage, capacity, 3000.0)
    assert [job_id for job_id, _ in fresh.starts] == [2]
    starving = decide_with("fairshare", queue, running, usage, capacity, 5001.0)
    assert starving.starts == [] and starving.waits[1].position == 1
    assert starving.waits[2].reason == "behind job 1, which has waited longer than the starvation time"
    assert starving.waits[1].estimated_start == 6000.0


def test_fairshare_serves_the_shares_before_a_job_bigger_than_its_groups_entitlement():
    """nlp (share 1 of 4: 2 GPUs) holds 1 GPU and wants an 8-GPU job then 1-GPU ones: its 1-GPU job takes a GPU
    back from vision (over its 6) rather than the 8-GPU job heading the queue and holding everyone off; past
    the starvation time the 8-GPU job leads its group, past twice that it heads the GPUs whatever the shares."""
    capacity = Capacity(gpus=GPUS, shares={"vision": 3.0, "nlp": 1.0}, starvation_s=3600.0)
    running = [A(i, "v", "vision", gpus=(str(i),), started_at=float(i), expected_end=9000.0) for i in range(7)]
    running.append(A(7, "n", "nlp", gpus=("7",), started_at=7.0, expected_end=9000.0))
    queue = [P(10, "n", "nlp", gpus=8, queued_at=0.0), P(11, "m", "nlp", gpus=1, queued_at=100.0),
             P(12, "v", "vision", gpus=1, queued_at=100.0)]
    fresh = decide_with("fairshare", queue, running, Usage(), capacity, 1000.0)
    assert fresh.preempt == [(6, 11)] and fresh.waits[10].position == 3
    leading = decide_with("fairshare", queue, running, Usage(), capacity, 4000.0)
    assert leading.waits[10].position == 1 and leading.preempt == []  # nlp's turn, but vision is not over share
    heavy = Usage(gpu_seconds={"n": 1e9})  # nlp used far more than vision: vision's job goes first, whoever leads
    assert decide_with("fairshare", queue, running, heavy, capacity, 4000.0).waits[10].position == 2
    assert decide_with("fairshare", queue, running, heavy, capacity, 8000.0).waits[10].position == 1
