"""API under load with 10,000 jobs in the database, then 100 simultaneous submissions.

1. ``GET /api/v1/jobs`` (a page of 50) and ``GET /api/v1/jobs/<id>`` (random ids) from 1 and then
   16 concurrent clients for ``--seconds`` each: p50/p99 latency and requests/s.
2. 100 threads released at once each POST a job (a stand-in task that prints its Visdom port and
   its lifetime, so the run is about the service, not torch): every POST answered 201, 100 new
   distinct ids in the database, every job succeeded, and no two jobs alive at the same time
   were given the same port.
Prints a table; the last line is one JSON object (``ratio`` = requests/s of GET /jobs/<id> with 16
clients over 1 client).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from job_launch import DIGITS, REPO, ServiceProcess, percentile, seed_jobs  # also puts the repository on sys.path

from cauchy.hypes import load_hypes, resolve_hypes
from services.jobs.store import ENDED, Store

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


def load(url_of: Callable[[random.Random], str], clients: int, seconds: float,
         headers: dict[str, str]) -> dict[str, float]:
    """``clients`` threads issuing GETs back to back for ``seconds``: latency percentiles and throughput."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng, http, mine = random.Random(seed), requests.Session(), []
        http.headers.update(headers)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = http.get(url_of(rng), timeout=30)
            mine.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        http.close()  # an idle keep-alive connection would hold one of waitress's connection slots
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - started
    return {"p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "rps": round(len(latencies) / elapsed, 1), "requests": len(latencies)}


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
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--submissions", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cauchy-bench-api-"))
    db_url = f"sqlite:///{root / 'home' / 'cauchy.db'}"
    (root / "home").mkdir(parents=True)
    seed_jobs(db_url, args.seed_jobs, resolve_hypes(load_hypes(str(REPO / "hypes" / DIGITS))))
    service = ServiceProcess(root / "home", cpu_slots="32", visdom_linger_s="0",
                             task_command=shlex.join([sys.executable, "-c", STAND_IN]))
    try:
        list_url = lambda rng: f"{service.url}/jobs"  # noqa: E731
        show_url = lambda rng: f"{service.url}/jobs/{rng.randint(1, args.seed_jobs)}"  # noqa: E731
        results = {
            "list_1_client": load(list_url, 1, args.seconds, service.headers),
            "list": load(list_url, args.clients, args.seconds, service.headers),
            "show_1_client": load(show_url, 1, args.seconds, service.headers),
            "show": load(show_url, args.clients, args.seconds, service.headers),
        }
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
        service.close()
    figures = {
        **{f"{name}_{key}": value for name, result in results.items() for key, value in result.items()},
        "clients": args.clients,
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
        "ratio": round(results["show"]["rps"] / results["show_1_client"]["rps"], 3),
    }
    print(f"{'request':28} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name in results:
        r = results[name]
        print(f"{name:28} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['rps']:>8.1f}")
    print(f"{args.submissions} simultaneous POSTs in {burst_s:.2f} s: {len(ids)} accepted, {len(set(ids))} distinct ids, "
          f"{figures['submissions_succeeded']} succeeded; {len(ports)} ports used, {overlaps} given twice; "
          f"{total} jobs in the database; service RSS {figures['service_rss_mb']} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
