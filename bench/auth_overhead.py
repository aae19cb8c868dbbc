"""What checking the caller costs: ``GET /api/v1/jobs/<id>`` p50 with a personal API token against the
same service with authentication off, in one run.

Two service processes over fresh homes serve the same job: one checks a member's ``Authorization:
Bearer`` token (HMAC-SHA256 of the token, one indexed look-up of it and its user, the user's groups,
the read rule); the other is built with ``create_app(..., without_auth_for_benchmark=True)``, a Python
argument that no setting, variable or file can set, so it exists only here. Rounds alternate the two;
each round is ``--requests`` sequential GETs on one keep-alive connection and yields their median.
The last line is one JSON object; ``ratio`` = token p50 / off p50 (target <= 1.10).

    python bench/auth_overhead.py [--rounds 9] [--requests 300]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from job_launch import free_port  # noqa: E402
from rounds import alternate, summary  # noqa: E402


def serve(side: str, home: Path, port: int) -> None:
    """The child: a service over ``home`` with one private job of the member ``bench``; prints what the
    parent needs (the job, and the member's token), then serves until killed."""
    from waitress import serve as waitress_serve

    from services.app import create_app, waitress_options
    from services.config import Settings

    settings = Settings(home=home, port=port, run_jobs=False, gpus=())
    app = create_app(settings, without_auth_for_benchmark=side == "off")
    svc = app.extensions["cauchy"]
    member = svc.accounts.create_user("bench", "bench-password")
    hypes = json.loads((REPO / "hypes/cls/image_classifier_smallcnn_digits.json").read_text())
    job = svc.store.add(name="bench", user=member.name, visibility="private", phase="train", hypes=hypes, overrides=[])
    token = svc.accounts.create_token(member.id, "bench").secret
    print(json.dumps({"job": job.id, "token": token}), flush=True)
    waitress_serve(app, host="127.0.0.1", port=port, **waitress_options(settings))


def start(side: str, root: Path) -> tuple[subprocess.Popen, str, dict[str, str]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", side, "--home", str(root / side), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = json.loads(proc.stdout.readline() or "null")
    if ready is None:
        raise SystemExit(f"the {side} service did not start")
    url = f"http://127.0.0.1:{port}/api/v1/jobs/{ready['job']}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the {side} service does not answer") from None
            time.sleep(0.05)
    headers = {"Authorization": f"Bearer {ready['token']}"} if side == "token" else {}
    return proc, url, headers


def p50_ms(http: requests.Session, url: str, count: int) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = http.get(url, timeout=30)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.text[:200]}")
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--serve", choices=("token", "off"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, Path(args.home), args.port)
        return 0
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-auth-") as tmp:
        procs, runs = [], {}
        try:
            for side in ("token", "off"):
                proc, url, headers = start(side, Path(tmp))
                procs.append(proc)
                http = requests.Session()
                http.headers.update(headers)
                runs[side] = partial(p50_ms, http, url, args.requests)
            print(f"GET /api/v1/jobs/<id>: p50 of {args.requests} sequential requests per round, {args.rounds} rounds")
            rates = alternate(runs, args.rounds)
            # On a busy machine rounds swing; the median of per-round ratios pairs neighbours in time.
            paired = statistics.median(t / o for t, o in zip(rates["token"], rates["off"]))
            print(f"  median of per-round ratios: {paired:.3f}")
            figures = summary(rates, "ms", rounds=args.rounds, requests=args.requests, paired_ratio=round(paired, 3))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
