"""Job launch through the control service against a bare ``python run_tasks.py``, in one run.

Rounds alternate a bare run and a run submitted to the service (``python -m services`` in its own
process, one CPU slot, so the two never compete): the same small digits job, timed from the spawn
(bare) or the POST (service) to the first line of metrics.jsonl, and for the service also to its
Visdom answering (against a bare ``start_visdom``). Each run is stopped (SIGTERM / ``/stop``) once
its first line is written. Then 10,000 jobs are put in the service's database and its RSS is
read after listing and showing them; each job's Visdom RSS is sampled while it runs.
Prints a table; the last line is one JSON object (``ratio`` = service p50 / bare p50 to the
first metrics line; ``ratio_paired_median`` is the median of each round's own ratio, steadier on a
busy machine).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from services.cli import Client, sign_in
from services.jobs.procs import Proc
from services.jobs.store import ENDED, Job, Store
from services.visdom_server import is_visdom_up, start_visdom

REPO = Path(__file__).resolve().parent.parent
DIGITS = "cls/image_classifier_smallcnn_digits.json"
POLL_S = 0.005


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 3), "p95": round(percentile(values, 95), 3)}


class ServiceProcess:
    """``python -m services`` (of the checkout ``repo``) on a free port over a fresh home; ``settings`` are
    CAUCHY_* variables. ``http`` (and ``headers``, for other sessions) carries a token of the service's admin,
    unless ``accounts`` is false (a baseline checkout from before accounts)."""

    def __init__(self, home: Path, repo: Path = REPO, accounts: bool = True, **settings: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        password = secrets.token_urlsafe(12)
        env = {**os.environ, "CAUCHY_HOME": str(home), "CAUCHY_PORT": str(self.port), "CAUCHY_GPUS": "none",
               "CAUCHY_ADMIN_PASSWORD": password, **{f"CAUCHY_{key.upper()}": value for key, value in settings.items()}}
        home.mkdir(parents=True, exist_ok=True)
        with open(home / "service.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "services"], cwd=repo, env=env, stdout=log,
                                         stderr=log)
        self.http = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.get(self.url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "service.log").read_text()) from None
                time.sleep(0.05)
        self.headers: dict[str, str] = {}
        if accounts:
            token = sign_in(Client(self.url.removesuffix("/api/v1"), None), "admin", password, "bench")["token"]
            self.headers = {"Authorization": f"Bearer {token}"}
        self.http.headers.update(self.headers)

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def close(self) -> None:
        """Stop the service, then whatever job processes it left (they outlive it by design)."""
        self.proc.terminate()
        self.proc.wait(30)
        store = Store(f"sqlite:///{self.home / 'cauchy.db'}")
        left = [(job.pid, job.pid_started) for job in store.in_states(["running", "stopping"])]
        left += [(job.visdom_pid, job.visdom_started) for job in store.with_viewer()]
        store.engine.dispose()
        for pid, started in left:  # adopt checks the start time: a reused pid is not ours to kill
            if (proc := Proc.adopt(pid, started)) is not None:
                proc.signal_group(signal.SIGKILL)


def seed_jobs(db_url: str, count: int, hypes: dict, states: tuple[str, ...] = ENDED, users: int = 7) -> None:
    """``count`` jobs (finished by default), written straight to the database (as months of use would leave it)."""
    store = Store(db_url)
    now = time.time()
    rows = [{"name": f"seeded {i}", "user": f"user{i % users}", "phase": "train", "state": states[i % len(states)],
             "priority": 0, "gpus_requested": 0, "gpus": "", "hypes": hypes, "overrides": [],
             "created_at": now - 86400 + i, "started_at": now - 86400 + i + 1, "ended_at": now - 86400 + i + 60,
             "exit_code": 0, "reason": "finished"} for i in range(count)]
    with store.session() as session:
        for start in range(0, count, 1000):
            session.bulk_insert_mappings(Job, rows[start:start + 1000])
    store.engine.dispose()


def wait_for_line(path: Path, started: float, timeout: float = 300) -> float:
    while not (path.exists() and path.stat().st_size > 0):
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"no metrics line in {path}")
        time.sleep(POLL_S)
    return time.perf_counter() - started


def bare_run(run_dir: Path, overrides: list[str]) -> float:
    argv = [sys.executable, "run_tasks.py", "--hypes", f"hypes/{DIGITS}", "--tmp_dir", str(run_dir)]
    for item in overrides:
        argv += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = wait_for_line(run_dir / "metrics.jsonl", started)
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)
    return seconds


def service_run(service: ServiceProcess, overrides: list[str], visdom_rss: list[float]) -> tuple[float, float]:
    """(seconds to the first metrics line, seconds to Visdom answering) from the POST."""
    started = time.perf_counter()
    job = service.http.post(service.url + "/jobs", json={"hypes": DIGITS, "overrides": overrides}, timeout=30).json()
    viz_s = None
    while viz_s is None:
        detail = service.http.get(f"{service.url}/jobs/{job['id']}", timeout=30).json()
        port = detail["visdom"]["port"]
        if port and is_visdom_up(port, f"/visdom/{job['id']}", timeout=1):
            viz_s = time.perf_counter() - started
        else:
            time.sleep(POLL_S)
    metrics_s = wait_for_line(Path(job["job_dir"]) / "metrics.jsonl", started)
    detail = service.http.get(f"{service.url}/jobs/{job['id']}", timeout=30).json()
    visdom_rss += [p["rss_mb"] for p in detail["processes"] if p["role"] == "visdom"]
    service.http.post(f"{service.url}/jobs/{job['id']}/stop", timeout=30)
    while service.http.get(f"{service.url}/jobs/{job['id']}", timeout=30).json()["state"] not in ENDED:
        time.sleep(0.05)
    return metrics_s, viz_s


def bare_visdom(root: Path, index: int) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = start_visdom(port, f"/visdom/bare{index}", str(root / f"env{index}"), str(root / f"visdom{index}.log"))
    while not is_visdom_up(port, f"/visdom/bare{index}", timeout=1):
        time.sleep(POLL_S)
    seconds = time.perf_counter() - started
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)
    return seconds


def prepare_data(root: Path) -> str:
    out = root / "digits"
    subprocess.run([sys.executable, "scripts/cls/digits/prepare.py", "--out", str(out)], cwd=REPO, check=True,
                   capture_output=True)
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--data", help="the digits data set (made in a temporary directory if omitted)")
    parser.add_argument("--seed-jobs", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cauchy-bench-launch-"))
    data = args.data or prepare_data(root)
    overrides = [f"data.data_dir={data}", "solver.max_epoch=null", "solver.max_iters=2", "solver.lr.metric=iters",
                 "solver.test_interval=2", "logging.progress_bar=false"]
    service = ServiceProcess(root / "home", cpu_slots="1", visdom_linger_s="0", stop_grace_s="60")
    bare_s, service_s, viz_s, bare_viz_s, visdom_rss = [], [], [], [], []
    try:
        for i in range(args.jobs):
            bare_s.append(bare_run(root / f"bare{i}", overrides))
            metrics, viz = service_run(service, overrides, visdom_rss)
            service_s.append(metrics)
            viz_s.append(viz)
            bare_viz_s.append(bare_visdom(root, i))
            print(f"round {i + 1:2}/{args.jobs}: bare {bare_s[-1]:.2f} s, service {metrics:.2f} s "
                  f"(Visdom up at {viz:.2f} s; bare Visdom {bare_viz_s[-1]:.2f} s)", flush=True)
        hypes = service.http.get(f"{service.url}/jobs/1", timeout=30).json()["hypes"]
        seed_jobs(f"sqlite:///{root / 'home' / 'cauchy.db'}", args.seed_jobs, hypes)
        for offset in range(0, 2000, 500):
            service.http.get(service.url + "/jobs", params={"limit": 500, "offset": offset}, timeout=60)
        for job_id in range(1, args.seed_jobs, 97):
            service.http.get(f"{service.url}/jobs/{job_id}", timeout=60)
        service_rss = service.rss_mb()
    finally:
        service.close()
    figures = {
        "jobs": args.jobs,
        "bare_first_metric_s": summary(bare_s),
        "service_first_metric_s": summary(service_s),
        "service_visdom_up_s": summary(viz_s),
        "bare_visdom_up_s": summary(bare_viz_s),
        "ratio": round(statistics.median(service_s) / statistics.median(bare_s), 3),
        "ratio_p95": round(percentile(service_s, 95) / percentile(bare_s, 95), 3),
        "ratio_paired_median": round(statistics.median(s / b for s, b in zip(service_s, bare_s)), 3),
        "service_rss_mb_with_jobs": round(service_rss, 1),
        "jobs_in_database": args.seed_jobs + args.jobs,
        "visdom_rss_mb_max": round(max(visdom_rss), 1) if visdom_rss else None,
    }
    print(f"\n{'to first metrics line':24} {'p50 s':>8} {'p95 s':>8}")
    for label, key in (("bare run_tasks.py", "bare_first_metric_s"), ("through the service", "service_first_metric_s"),
                       ("service: Visdom up", "service_visdom_up_s"), ("bare start_visdom", "bare_visdom_up_s")):
        print(f"{label:24} {figures[key]['p50']:>8.3f} {figures[key]['p95']:>8.3f}")
    print(f"service/bare (p50): {figures['ratio']:.3f}   service RSS with {figures['jobs_in_database']} jobs: "
          f"{figures['service_rss_mb_with_jobs']} MB   Visdom RSS max: {figures['visdom_rss_mb_max']} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
