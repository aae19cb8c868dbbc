"""API under load with 10,000 jobs in the database, this checkout against a baseline, then 100 simultaneous
submissions.

1. Two services over copies of one database of 10,000 jobs: this checkout's and the baseline's (the
   checkout of ``--baseline-ref``, by default 08d5888, the code before the list became plain rows; ``git
   archive`` into a temporary directory). This checkout's with token auth on (the admin's token: every
   job readable), the baseline's without (it predates accounts). ``GET /api/v1/jobs`` (a page of 50) and
   ``GET /api/v1/jobs/<id>`` (random ids) from 1 and then 16 concurrent clients, and pages of 50 at random
   offsets below 1,000 (``list_pages``: a different page nearly every time, so this checkout can seldom reuse
   a body it built before, services/api/reuse.py) from 16, each measurement in
   ``--rounds`` alternating rounds of the two services (``--seconds`` in all per service): p50/p99 latency, requests/s, and the
   CPU used by the clients (this process) and by the service, in percent of one core: they share the
   machine's cores.
2. The supervisor's scheduling pass of each checkout over ``--queued-jobs`` (10,000) queued jobs of five
   users, each with a job running, and one job of a sixth user queued last: its time (the median of 20
   passes, each after one more submission), and whether it starts the sixth user's job (the baseline
   looked at the first 1,000 only).
3. 100 threads released at once each POST a job to this checkout's service (a stand-in task that prints
   its Visdom port and its lifetime, so the run is about the service, not torch): every POST answered
   201, 100 new distinct ids in the database, every job succeeded, and no two jobs alive at the same
   time were given the same port.
Prints a table; the last line is one JSON object. ``ratio`` = requests/s of GET /api/v1/jobs with 16
clients, this checkout over the baseline, measured in this run (``p99_ratio``: their p99 latencies;
``list_pages_ratio``: the same ratio for pages at random offsets;
``cpu_per_request_ratio``: the service CPU time of one list request, baseline over this checkout, which
the machine's other load does not skew the way it skews requests/s).
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import requests
from job_launch import DIGITS, REPO, ServiceProcess, percentile, seed_jobs  # also puts the repository on sys.path

from cauchy.hypes import load_hypes, resolve_hypes
from services.jobs.store import ENDED, Store

BASELINE_REF = "08d5888"
STAND_IN = """
import json, os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
start = time.time()
time.sleep(0.2)
with open(os.path.join(args["--tmp_dir"], "metrics.jsonl"), "a") as fh:
    fh.write(json.dumps({"step": 0, "epoch": 0.0, "phase": "train", "name": "max_iters", "value": 1,
                         "time": time.time()}) + "\\n")
print(f"port={args['--viz_port']} start={start} end={time.time()}")
"""


class Measured:
    """Latencies, wall time and CPU (clients' and service's) summed over the rounds of one measurement."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.elapsed = self.client_cpu = self.service_cpu = 0.0

    def figures(self) -> dict[str, float]:
        return {"p50_ms": round(statistics.median(self.latencies) * 1000, 2),
                "p99_ms": round(percentile(self.latencies, 99) * 1000, 2),
                "rps": round(len(self.latencies) / self.elapsed, 1), "requests": len(self.latencies),
                "client_cpu_pct": round(100 * self.client_cpu / self.elapsed, 1),
                "service_cpu_pct": round(100 * self.service_cpu / self.elapsed, 1),
                "service_cpu_ms_per_request": round(1000 * self.service_cpu / len(self.latencies), 3)}


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def load(url_of: Callable[[random.Random], str], clients: int, seconds: float, headers: dict[str, str],
         service: psutil.Process, into: Measured) -> None:
    """``clients`` threads issuing GETs (with ``headers``) back to back for ``seconds``, added to ``into``.

    Each client is one keep-alive ``http.client`` connection: the clients share the machine's cores with
    the service, so they are kept as light as a Python client can be (``requests`` costs several times
    more CPU per GET, which would be measured as the service's slowness)."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng, mine = random.Random(seed), []
        first = urlsplit(url_of(rng))
        conn = http.client.HTTPConnection(first.hostname, first.port, timeout=30)
        while time.perf_counter() < deadline:
            url = urlsplit(url_of(rng))
            started = time.perf_counter()
            conn.request("GET", f"{url.path}?{url.query}" if url.query else url.path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            mine.append(time.perf_counter() - started)
            assert response.status == 200, body
        conn.close()  # an idle keep-alive connection would hold one of waitress's connection slots
        with lock:
            latencies.extend(mine)

    started, cpu, service_cpu = time.perf_counter(), time.process_time(), cpu_seconds(service)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    into.elapsed += time.perf_counter() - started
    into.client_cpu += time.process_time() - cpu
    into.service_cpu += cpu_seconds(service) - service_cpu
    into.latencies.extend(latencies)

# One scheduling pass of the supervisor, timed in the checkout it runs in: argv = database URL. This checkout's
# weighs the whole queue (kept in memory by the store, which reads only the rows written since the last pass, and
# by the supervisor's ``PendingQueue``) and asks the default policy (fairshare); the baseline's picked from the
# first 1,000. A job is submitted before each timed pass (a user's, who has one running: the late user's job still
# goes first), as a busy service sees it.
TIMING = """
times, cpu = [], []
schedule_pass()  # the first pass reads the whole queue
for _ in range(20):
    store.add(name="more", user="user0", phase="train", hypes={}, overrides=[])
    started, started_cpu = time.perf_counter(), time.process_time()
    chosen = schedule_pass()
    times.append(time.perf_counter() - started)
    cpu.append(time.process_time() - started_cpu)
print(round(statistics.median(times) * 1000, 2), chosen, round(statistics.median(cpu) * 1000, 2))
"""
SCHEDULE_PASS = {
    "new": """
import statistics, sys, time
from services.jobs.policies import decide_with
from services.jobs.policies.base import Active, Capacity, Usage
from services.jobs.store import Store
from services.jobs.supervisor import PendingQueue
store = Store(sys.argv[1])
running = [Active(-1 - i, f"user{i}", "", 0) for i in range(5)]
cap = Capacity(cpu_slots=6, free_ports=60, starvation_s=7 * 86400.0)  # the seeded jobs are a day old: not starving
view = PendingQueue()
def schedule_pass():
    queue = view.update(store.queued(), {})
    decision = decide_with("fairshare", [pending for _, pending in queue.values()], running, Usage(), cap, time.time())
    return queue[decision.starts[0][0]][0].user if decision.starts else None
""" + TIMING,
    "baseline": """
import statistics, sys, time
from services.jobs.scheduler import Capacity, pick
from services.jobs.store import Store
store = Store(sys.argv[1])
cap = Capacity([], free_cpu_slots=1, free_ports=60, running_per_user={f"user{i}": 1 for i in range(5)})
def schedule_pass():
    chosen = pick(store.in_states(['queued'], 1000, with_hypes=False), cap)
    return chosen[0][0].user if chosen else None
""" + TIMING,
}


def schedule_passes(root: Path, repos: dict[str, Path], queued: int) -> dict[str, object]:
    """Each checkout's scheduling pass over ``queued`` jobs of five users (one running each) and then one job
    of a sixth user: the pass's median time, and whether the sixth user's job is the one it starts."""
    db_url = f"sqlite:///{root / 'queue.db'}"
    seed_jobs(db_url, queued, {}, states=("queued",), users=5)
    store = Store(db_url)
    store.add(name="late", user="late", phase="train", hypes={}, overrides=[])
    store.engine.dispose()
    figures: dict[str, object] = {}
    for side, repo in repos.items():
        out = subprocess.run([sys.executable, "-c", SCHEDULE_PASS[side], db_url], cwd=repo, check=True,
                             capture_output=True, text=True).stdout.split()
        prefix = "" if side == "new" else "baseline_"
        figures[f"{prefix}schedule_pass_ms"] = float(out[0])
        figures[f"{prefix}schedule_pass_cpu_ms"] = float(out[2])
        figures[f"{prefix}schedule_pass_starts_the_late_user"] = out[1] == "late"
    return figures


def baseline_checkout(ref: str, into: Path) -> Path:
    """The repository at ``ref``, unpacked (no worktree of the repository is touched)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def burst(service: ServiceProcess, count: int) -> list[requests.Response]:
    barrier = threading.Barrier(count)

    def submit(i: int) -> requests.Response:
        body = {"hypes": DIGITS, "name": f"burst {i}", "user": f"user{i % 5}"}  # the admin submits for them
        barrier.wait()
        return requests.post(service.url + "/jobs", json=body, headers=service.headers, timeout=120)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(submit, range(count)))


def port_overlaps(service: ServiceProcess, ids: list[int]) -> tuple[int, set[int]]:
    """Pairs of jobs that held one port at the same time, read from what each task printed."""
    lives: dict[int, list[tuple[float, float]]] = {}
    for job_id in ids:
        text = service.http.get(f"{service.url}/jobs/{job_id}/logs", timeout=30).json()["text"]
        port, start, end = re.search(r"port=(\d+) start=([\d.]+) end=([\d.]+)", text).groups()
        lives.setdefault(int(port), []).append((float(start), float(end)))
    overlaps = 0
    for spans in lives.values():
        spans.sort()
        overlaps += sum(1 for (_, end), (start, _) in zip(spans, spans[1:]) if start < end)
    return overlaps, set(lives)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement and service, over all rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--queued-jobs", type=int, default=10_000, help="queue length for the scheduling pass")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the code to compare with")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cauchy-bench-api-"))
    db_url = f"sqlite:///{root / 'home' / 'cauchy.db'}"
    (root / "home").mkdir(parents=True)
    seed_jobs(db_url, args.seed_jobs, resolve_hypes(load_hypes(str(REPO / "hypes" / DIGITS))))
    (root / "baseline-home").mkdir()
    shutil.copy(root / "home" / "cauchy.db", root / "baseline-home" / "cauchy.db")
    baseline_repo = baseline_checkout(args.baseline_ref, root / "baseline")
    passes = schedule_passes(root, {"new": REPO, "baseline": baseline_repo}, args.queued_jobs)
    services = {"new": ServiceProcess(root / "home", cpu_slots="32", visdom_linger_s="0",
                                      task_command=shlex.join([sys.executable, "-c", STAND_IN])),
                "baseline": ServiceProcess(root / "baseline-home", repo=baseline_repo, accounts=False, cpu_slots="1")}
    try:
        def a_page(rng: random.Random) -> str:
            """One of the first 1,000 offsets: rarely a page asked for before (the service keeps 64), and near
            enough to the newest job that the work is the page's, not the database's stepping over ``offset``
            rows (a page 5,000 jobs deep costs both services about 5 ms more)."""
            return f"/jobs?offset={rng.randrange(1000)}"

        def a_job(rng: random.Random) -> str:
            return f"/jobs/{rng.randint(1, args.seed_jobs)}"

        measurements: dict[str, tuple[Callable[[random.Random], str], int]] = {
            "list_1_client": (lambda rng: "/jobs", 1), "list": (lambda rng: "/jobs", args.clients),
            "list_pages": (a_page, args.clients), "show_1_client": (a_job, 1), "show": (a_job, args.clients)}
        results = {side: {name: Measured() for name in measurements} for side in services}
        for name, (path_of, clients) in measurements.items():
            for round_index in range(args.rounds):
                order = list(services) if round_index % 2 == 0 else list(reversed(services))
                for side in order:
                    url = services[side].url
                    load(lambda rng, url=url, path_of=path_of: url + path_of(rng), clients, args.seconds / args.rounds,
                         services[side].headers,
                         psutil.Process(services[side].proc.pid), results[side][name])
        service = services["new"]
        for i in range(5):  # the owners of the burst's jobs
            service.http.post(service.url + "/users", json={"name": f"user{i}", "password": f"password-of-user{i}"},
                              timeout=60).raise_for_status()
        started = time.perf_counter()
        responses = burst(service, args.submissions)
        burst_s = time.perf_counter() - started
        ids = [r.json()["id"] for r in responses if r.status_code == 201]
        store = Store(db_url)
        deadline = time.monotonic() + 600
        while len(store.in_states(["queued", "running", "stopping"])) and time.monotonic() < deadline:
            time.sleep(0.2)
        states = [store.get(job_id).state for job_id in ids]
        total = store.list(limit=1)[1]
        store.engine.dispose()
        overlaps, ports = port_overlaps(service, ids)
        service_rss = service.rss_mb()
    finally:
        for side in services.values():
            side.close()
    figures: dict[str, object] = {
        f"{name}_{key}" if side == "new" else f"baseline_{name}_{key}": value
        for side, by_name in results.items() for name, measured in by_name.items()
        for key, value in measured.figures().items()}
    new_list, old_list = results["new"]["list"].figures(), results["baseline"]["list"].figures()
    figures.update({
        "clients": args.clients,
        "baseline_ref": args.baseline_ref,
        "jobs_in_database": total,
        "submissions": args.submissions,
        "submissions_accepted": len(ids),
        "submissions_distinct_ids": len(set(ids)),
        "submissions_succeeded": states.count("succeeded"),
        "submissions_not_ended": sum(1 for state in states if state not in ENDED),
        "submission_burst_s": round(burst_s, 2),
        "ports_used": len(ports),
        "port_given_twice": overlaps,
        "service_rss_mb": round(service_rss, 1),
        "queued_jobs": args.queued_jobs,
        **passes,
        "p99_ratio": round(new_list["p99_ms"] / old_list["p99_ms"], 3),
        # Pages at random offsets: what a list costs when no body built before can be reused.
        "list_pages_ratio": round(results["new"]["list_pages"].figures()["rps"]
                                  / results["baseline"]["list_pages"].figures()["rps"], 3),
        # What a list request costs the service, baseline over this checkout: unlike requests/s it does not
        # depend on how much of the shared cores other processes leave to the two services.
        "cpu_per_request_ratio": round(old_list["service_cpu_ms_per_request"] / new_list["service_cpu_ms_per_request"], 3),
        "ratio": round(new_list["rps"] / old_list["rps"], 3),
    })
    print(f"{'request':28} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'clients CPU %':>14} {'service CPU %':>14}")
    for side, by_name in results.items():
        for name, measured in by_name.items():
            r = measured.figures()
            label = f"{name} ({side})"
            print(f"{label:28} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['rps']:>8.1f} {r['client_cpu_pct']:>14.1f} "
                  f"{r['service_cpu_pct']:>14.1f}")
    print(f"GET /api/v1/jobs with {args.clients} clients, this checkout / {args.baseline_ref}: "
          f"{figures['ratio']}x the requests/s, p99 {new_list['p99_ms']} ms vs {old_list['p99_ms']} ms; service CPU "
          f"per request {new_list['service_cpu_ms_per_request']} ms vs {old_list['service_cpu_ms_per_request']} ms")
    print(f"pages at random offsets with {args.clients} clients: {figures['list_pages_ratio']}x the requests/s")
    print(f"scheduling pass over {args.queued_jobs} queued jobs: {passes['schedule_pass_ms']} ms "
          f"({passes['schedule_pass_cpu_ms']} ms CPU; starts the late user's job: "
          f"{passes['schedule_pass_starts_the_late_user']}); baseline {passes['baseline_schedule_pass_ms']} ms "
          f"({passes['baseline_schedule_pass_cpu_ms']} ms CPU; {passes['baseline_schedule_pass_starts_the_late_user']})")
    print(f"{args.submissions} simultaneous POSTs in {burst_s:.2f} s: {len(ids)} accepted, {len(set(ids))} distinct ids, "
          f"{figures['submissions_succeeded']} succeeded; {len(ports)} ports used, {overlaps} given twice; "
          f"{total} jobs in the database; service RSS {figures['service_rss_mb']} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
