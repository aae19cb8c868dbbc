"""Submission to the first metric through the ``ray`` executor against the ``local`` one, in one run.

A one-node Ray cluster on 127.0.0.1 (``cauchy node join --head``, token authentication on) and two services
(``python -m services``, each over its own home): one with ``CAUCHY_EXECUTOR=local``, one with
``CAUCHY_EXECUTOR=ray`` and no shared home, so its job's node streams metrics.jsonl back through
``/api/v1/jobs/<id>/node/files/``. Rounds alternate the two with the same small digits job, timed from the
POST to the first line of metrics.jsonl in the service's job directory (and to its Visdom answering), then
stopped. Prints a table; the last line is one JSON object (``ratio`` = ray p50 / local p50 to the first
metrics line; ``ratio_paired_median``: the median of each round's own ratio, steadier on a busy machine).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.job_launch import ServiceProcess, percentile, prepare_data, service_run, summary
from tests.services.ray_nodes import Cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="rounds (one job through each executor)")
    parser.add_argument("--data", help="the digits data set (made in a temporary directory if omitted)")
    args = parser.parse_args()
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="cauchy-bench-ray-"))
    data = args.data or prepare_data(root)
    overrides = [f"data.data_dir={data}", "solver.max_epoch=null", "solver.max_iters=2", "solver.lr.metric=iters",
                 "solver.test_interval=2", "logging.progress_bar=false"]
    local_s, ray_s, local_viz, ray_viz, rss = [], [], [], [], []
    with Cluster({"a": 1}) as cluster:
        print(f"Ray head up in {cluster.start_s:.1f} s", flush=True)
        common = {"visdom_linger_s": "0", "stop_grace_s": "60", "data_roots": str(Path(data).parent)}
        services: list[ServiceProcess] = []
        try:
            local = ServiceProcess(root / "local", cpu_slots="1", **common)
            services.append(local)
            ray = ServiceProcess(root / "ray", executor="ray", ray_address=cluster.dashboard, **common)
            services.append(ray)
            for i in range(args.jobs):
                metrics, viz = service_run(local, overrides, rss)
                local_s.append(metrics)
                local_viz.append(viz)
                metrics, viz = service_run(ray, overrides, rss)
                ray_s.append(metrics)
                ray_viz.append(viz)
                print(f"round {i + 1:2}/{args.jobs}: local {local_s[-1]:.2f} s, ray {ray_s[-1]:.2f} s", flush=True)
        finally:
            for service in services:
                service.close()
    figures = {
        "jobs": args.jobs,
        "local_first_metric_s": summary(local_s),
        "ray_first_metric_s": summary(ray_s),
        "local_visdom_up_s": summary(local_viz),
        "ray_visdom_up_s": summary(ray_viz),
        "ray_head_start_s": round(cluster.start_s, 1),
        "ratio": round(statistics.median(ray_s) / statistics.median(local_s), 3),
        "ratio_p95": round(percentile(ray_s, 95) / percentile(local_s, 95), 3),
        "ratio_paired_median": round(statistics.median(r / b for r, b in zip(ray_s, local_s)), 3),
        "load_average": round(os.getloadavg()[0], 2),
        "run_s": round(time.monotonic() - started, 1),
    }
    print(f"\n{'to first metrics line':24} {'p50 s':>8} {'p95 s':>8}")
    for label, key in (("local executor", "local_first_metric_s"), ("ray executor", "ray_first_metric_s"),
                       ("local: Visdom up", "local_visdom_up_s"), ("ray: Visdom up", "ray_visdom_up_s")):
        print(f"{label:24} {figures[key]['p50']:>8.3f} {figures[key]['p95']:>8.3f}")
    print(f"ray/local (p50): {figures['ratio']:.3f}   paired median: {figures['ratio_paired_median']:.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
