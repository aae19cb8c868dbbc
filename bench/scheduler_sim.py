"""The scheduling policies on a simulated cluster: ``fairshare`` beside ``fifo`` and ``priority``, in one run.

Drives the service's own policy code (``services.jobs.policies.decide_with``, with decayed usage from
``services.jobs.policies.base.decayed``) with a simulated clock over a trace shaped after published
GPU-cluster traces (Microsoft Philly, Alibaba PAI, SenseTime Helios): heavy-tailed durations (log-normal,
median 12 minutes, a tail to days), mostly 1-GPU jobs with some 2-, 4- and 8-GPU ones, submitted in
bursts (``--load``: the offered load over capacity on average, 1.1 by default, so demand exceeds capacity
for long stretches and the queue drains at times); 16 GPUs, 12 users in 3 groups with shares 5:3:2, 2,000 jobs; users state time limits that
overestimate their jobs 1.2 to 3 times (what backfill reads); a running job's end is known from its
measured pace. A preempted job holds its GPUs for the stop's grace (30 s), then loses 60 s to restart, and
resumes where it stopped (exact resume). The scheduler decides at every event (arrival, end, stop done), and,
as the supervisor does, keeps the jobs it preempted for as claims (``Usage.claims``) until they start.

Figures, per policy: GPU utilisation while demand exceeds capacity (target >= 0.95); fair-share error: the
mean over groups of |group's share of busy GPUs - its entitled share| (entitled: the 16 GPUs water-filled by
share over the groups' demand), time-weighted over the saturated time (target <= 0.05); p50/p95 wait per
group; the longest wait of an 8-GPU job; preemptions; and the decision time of one tick with 10,000 queued
jobs. ``ratio`` = fifo's fair-share error / fairshare's. Time is process CPU time of this benchmark (one
thread), printed with the wall time and load average. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from services.jobs.policies import POLICIES, decide_with
from services.jobs.policies.base import Active, Capacity, Pending, Usage, decayed, water_fill

GPUS = tuple(str(i) for i in range(16))
GROUPS = {"vision": 5.0, "speech": 3.0, "nlp": 2.0}
USERS = {f"{group}-{i}": group for group in GROUPS for i in range(4)}
STOP_GRACE_S = 30.0
RESTART_S = 60.0
HALF_LIFE_S = 6 * 3600.0


@dataclass
class SimJob:
    id: int
    user: str
    group: str
    priority: int
    gpus: int
    submit: float
    work: float  # seconds of work left
    limit: float  # the user's time limit (an overestimate)
    queued_at: float = 0.0  # submitted, or requeued after a preemption
    first_start: float | None = None
    preemptions: int = 0


def make_trace(n_jobs: int, seed: int, load: float) -> list[SimJob]:
    """Bursts of jobs from random users; the arrival rate makes the offered load ``load`` times capacity."""
    rng = random.Random(seed)
    jobs: list[SimJob] = []
    users = list(USERS)
    weights = [3, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1]  # some users submit more than others
    t = 0.0
    sizes, size_weights = (1, 2, 4, 8), (0.72, 0.12, 0.10, 0.06)
    mean_gpu_s = 0.0
    raw = []
    while len(raw) < n_jobs:
        user = rng.choices(users, weights)[0]
        burst = min(rng.choice([1, 1, 1, 2, 3, 5, 8, 15, 30]), n_jobs - len(raw))
        gpus = rng.choices(sizes, size_weights)[0]
        for _ in range(burst):
            duration = min(math.exp(rng.gauss(math.log(720.0), 1.6)), 3 * 86400.0)
            priority = rng.choices([-10, 0, 10], [0.2, 0.77, 0.03])[0]
            raw.append((user, gpus if rng.random() < 0.8 else rng.choices(sizes, size_weights)[0], duration, priority))
            mean_gpu_s += raw[-1][1] * duration
    mean_gpu_s /= len(raw)
    gap = mean_gpu_s / (len(GPUS) * load)  # seconds between jobs
    i = 0
    while i < len(raw):
        user = raw[i][0]
        burst_end = i
        while burst_end < len(raw) and raw[burst_end][0] == user:
            burst_end += 1
        for user, gpus, duration, priority in raw[i:burst_end]:
            jobs.append(SimJob(len(jobs) + 1, user, USERS[user], priority, gpus, t, duration,
                               duration * rng.uniform(1.2, 3.0)))
        t += rng.expovariate(1.0 / (gap * (burst_end - i)))
        i = burst_end
    return jobs


@dataclass
class Run:
    job: SimJob
    gpus: tuple[str, ...]
    started: float
    end: float
    stopping_until: float | None = None


@dataclass
class Result:
    busy_saturated: float = 0.0
    saturated_s: float = 0.0
    error_weighted: float = 0.0
    preemptions: int = 0
    decisions: int = 0
    decide_cpu_s: float = 0.0
    waits: dict[str, list[float]] = field(default_factory=dict)
    longest_8gpu_wait: float = 0.0
    makespan: float = 0.0


def simulate(policy: str, trace: list[SimJob]) -> Result:
    jobs = [SimJob(**{**job.__dict__}) for job in trace]
    arrivals = sorted(jobs, key=lambda j: j.submit)
    events: list[tuple[float, int, str, int]] = []  # (time, seq, kind, job id)
    seq = 0
    for job in arrivals:
        events.append((job.submit, seq, "arrive", job.id))
        seq += 1
    heapq.heapify(events)
    by_id = {job.id: job for job in jobs}
    queued: dict[int, SimJob] = {}
    running: dict[int, Run] = {}
    usage = Usage()
    usage_at: dict[str, float] = {}
    capacity = Capacity(gpus=GPUS, shares=dict(GROUPS), half_life_s=HALF_LIFE_S)
    result = Result(waits={group: [] for group in GROUPS})
    now = 0.0
    done = 0
    while events:
        t = events[0][0]
        _account(result, queued, running, now, t)
        for user in USERS:  # usage: what each user held since the last event, decayed
            held = sum(len(run.gpus) for run in running.values() if run.job.user == user)
            usage.gpu_seconds[user] = decayed(usage.gpu_seconds.get(user, 0.0), held, t - usage_at.get(user, 0.0),
                                              HALF_LIFE_S)
            usage_at[user] = t
        now = t
        while events and events[0][0] == now:
            _, _, kind, job_id = heapq.heappop(events)
            job = by_id[job_id]
            if kind == "arrive":
                job.queued_at = now
                queued[job_id] = job
            elif kind == "end" and job_id in running and running[job_id].stopping_until is None \
                    and running[job_id].end == now:
                del running[job_id]
                done += 1
            elif kind == "stopped" and job_id in running and running[job_id].stopping_until == now:
                run = running.pop(job_id)
                job.work = max(run.end - now, 0.0) + STOP_GRACE_S + RESTART_S  # resumes where it stopped
                job.queued_at = now
                queued[job_id] = job
        pending = [Pending(job.id, job.user, job.group, job.priority, job.gpus, duration_s=job.limit,
                           queued_at=job.queued_at)
                   for job in queued.values()]
        active = [Active(run.job.id, run.job.user, run.job.group, run.job.priority, run.gpus, started_at=run.started,
                         expected_end=run.end, stopping=run.stopping_until is not None) for run in running.values()]
        started = time.process_time()
        decision = decide_with(policy, pending, active, usage, capacity, now)
        result.decide_cpu_s += time.process_time() - started
        result.decisions += 1
        for victim_id, for_job in decision.preempt:
            usage.claims[for_job] = now
            run = running[victim_id]
            run.stopping_until = now + STOP_GRACE_S
            run.job.preemptions += 1
            result.preemptions += 1
            heapq.heappush(events, (run.stopping_until, seq, "stopped", victim_id))
            seq += 1
        for job_id, gpus in decision.starts:
            job = queued.pop(job_id)
            usage.claims.pop(job_id, None)
            if job.first_start is None:
                job.first_start = now
                result.waits[job.group].append(now - job.submit)
                if job.gpus == 8:
                    result.longest_8gpu_wait = max(result.longest_8gpu_wait, now - job.submit)
            running[job_id] = Run(job, gpus, now, now + job.work)
            usage.last_start[job.user] = now
            heapq.heappush(events, (now + job.work, seq, "end", job_id))
            seq += 1
    assert done == len(jobs) and not queued and not running, (done, len(queued), len(running))
    result.makespan = now
    return result


def _account(result: Result, queued: dict[int, SimJob], running: dict[int, Run], start: float, end: float) -> None:
    """Utilisation and fair-share error over [start, end), counted while demand exceeds capacity."""
    dt = end - start
    if dt <= 0:
        return
    demand = {group: 0 for group in GROUPS}
    for job in queued.values():
        demand[job.group] += job.gpus
    busy = {group: 0 for group in GROUPS}
    for run in running.values():
        demand[run.job.group] += len(run.gpus)
        busy[run.job.group] += len(run.gpus)
    if sum(demand.values()) < len(GPUS):
        return
    result.saturated_s += dt
    total_busy = sum(busy.values())
    result.busy_saturated += dt * total_busy / len(GPUS)
    fair = water_fill(demand, GROUPS.__getitem__, len(GPUS))
    fair_total = sum(fair.values())
    if total_busy:
        error = statistics.fmean(abs(busy[g] / total_busy - fair[g] / fair_total) for g in GROUPS)
        result.error_weighted += dt * error


def decision_time(policy: str, n_queued: int, seed: int, repeats: int) -> float:
    """CPU seconds of one decision with ``n_queued`` jobs waiting and every GPU busy (median of ``repeats``)."""
    rng = random.Random(seed)
    users = list(USERS)
    queue = [Pending(i, user, USERS[user], rng.choice([-10, 0, 0, 0, 10]), rng.choice([1, 1, 1, 2, 4, 8]),
                     duration_s=rng.uniform(600, 86400)) for i, user in ((i, rng.choice(users)) for i in range(1, n_queued + 1))]
    running = [Active(100_000 + i, users[i % len(users)], USERS[users[i % len(users)]], 0, (GPUS[i],),
                      started_at=float(i), expected_end=3600.0 + i) for i in range(len(GPUS))]
    usage = Usage(gpu_seconds={user: rng.uniform(0, 1e5) for user in users})
    capacity = Capacity(gpus=GPUS, shares=dict(GROUPS), half_life_s=HALF_LIFE_S)
    times = []
    for _ in range(repeats):
        started = time.process_time()
        decide_with(policy, queue, running, usage, capacity, 100.0)
        times.append(time.process_time() - started)
    return statistics.median(times)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load", type=float, default=1.1, help="offered load over capacity, on average")
    parser.add_argument("--queued", type=int, default=10_000, help="queue length for the decision time")
    args = parser.parse_args()
    wall, cpu = time.monotonic(), time.process_time()
    trace = make_trace(args.jobs, args.seed, args.load)
    gpu_hours = sum(job.gpus * job.work for job in trace) / 3600
    print(f"trace: {len(trace)} jobs, {gpu_hours:.0f} GPU-hours over {trace[-1].submit / 3600:.1f} h of arrivals, "
          f"{len(GPUS)} GPUs, groups {GROUPS}")
    figures: dict[str, dict] = {}
    print(f"{'policy':10} {'util':>6} {'fs_err':>7} {'preempt':>7} {'8gpu_max_wait_h':>15} {'tick_10k_s':>10}  "
          "wait p50/p95 (h) per group")
    for name in POLICIES:
        result = simulate(name, trace)
        tick = decision_time(name, args.queued, args.seed, 5)
        waits = {g: {"p50_h": round(percentile(w, 50) / 3600, 3), "p95_h": round(percentile(w, 95) / 3600, 3)}
                 for g, w in result.waits.items()}
        figures[name] = {
            "utilisation_saturated": round(result.busy_saturated / max(result.saturated_s, 1e-9), 4),
            "fair_share_error": round(result.error_weighted / max(result.saturated_s, 1e-9), 4),
            "saturated_h": round(result.saturated_s / 3600, 1), "makespan_h": round(result.makespan / 3600, 1),
            "wait": waits, "longest_8gpu_wait_h": round(result.longest_8gpu_wait / 3600, 2),
            "preemptions": result.preemptions, "decisions": result.decisions,
            "mean_decision_s": round(result.decide_cpu_s / result.decisions, 5),
            "decision_s_at_10k_queued": round(tick, 4),
        }
        f = figures[name]
        per_group = "  ".join(f"{g} {w['p50_h']}/{w['p95_h']}" for g, w in waits.items())
        print(f"{name:10} {f['utilisation_saturated']:6.3f} {f['fair_share_error']:7.4f} {f['preemptions']:7d} "
              f"{f['longest_8gpu_wait_h']:15.2f} {f['decision_s_at_10k_queued']:10.4f}  {per_group}", flush=True)
    fair = figures["fairshare"]
    out = {
        "policies": figures,
        "fairshare_utilisation_saturated": fair["utilisation_saturated"],
        "fairshare_fair_share_error": fair["fair_share_error"],
        "fairshare_decision_s_at_10k_queued": fair["decision_s_at_10k_queued"],
        "targets_met": fair["utilisation_saturated"] >= 0.95 and fair["fair_share_error"] <= 0.05,
        "ratio": round(figures["fifo"]["fair_share_error"] / max(fair["fair_share_error"], 1e-9), 2),
        "cpu_s": round(time.process_time() - cpu, 1), "wall_s": round(time.monotonic() - wall, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2), "time_is": "process CPU time (one thread)",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
