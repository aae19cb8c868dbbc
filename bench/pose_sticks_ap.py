"""Trains pose models on the synthetic sticks set on the CPU within one CPU-time budget each and
reports their OKS AP on its validation split.

    python bench/pose_sticks_ap.py [--hypes H [H ...]] [--data DIR] [--budget-cpu-minutes 15]
                                   [--threads 2] [--iters N] [--run-dir DIR]

Without ``--data`` the set is generated first (scripts/pose/sticks/prepare.py: 800 train / 100 val
images of at most 160 pixels, several figures each; not timed). The models are ``HYPES`` (the first
is SimpleBaseline-small, the goal: OKS AP >= 0.70 within 15 CPU-minutes on 2 threads) plus, when the
checkout has it, ``BOTTOM_UP_HYPES`` (OpenPose-small), trained after the same CPU time. Each trains
through the runner as a job would, on the CPU with ``--threads`` torch threads; a watcher adds up
the CPU time of the task and its data workers and stops training (SIGTERM: a checkpoint, then
exit) when the budget is spent, so a model whose schedule is longer is measured after the same
time. The test phase then evaluates the last checkpoint on the val split (not counted). Idle torch
threads sleep (``OMP_WAIT_POLICY=PASSIVE``) so they do not burn CPU time spinning on a loaded
machine; wall minutes and the load average are reported beside the CPU minutes.

The last line of output is one JSON object with ``ap`` (the first model's), ``ratio`` (that AP over
the goal's 0.70) and each model's figures.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP

import psutil
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.dirname(os.path.abspath(__file__))]

from det_shapes_map import prepare_shapes  # noqa: E402
from model_zoo import cpu_seconds as process_cpu_seconds  # noqa: E402

import run_tasks  # noqa: E402
from cauchy import exitcodes, rundir  # noqa: E402
from cauchy.visualizer import read_events  # noqa: E402

HYPES = ["hypes/pose/simple_baseline_small_sticks.json"]
BOTTOM_UP_HYPES = "hypes/pose/openpose_small_sticks.json"  # the bottom-up figure, beside the first when present
GOAL_AP, GOAL_CPU_MINUTES = 0.70, 15.0


def cpu_seconds() -> float:
    """CPU time of this process and its live children (the data workers), user and system."""
    return process_cpu_seconds(psutil.Process())


class Budget(threading.Thread):
    """Sends this process SIGTERM once ``seconds`` of CPU time have been spent since it started."""

    def __init__(self, seconds: float) -> None:
        super().__init__(daemon=True)
        self.seconds, self.start_cpu, self.done, self.spent = seconds, cpu_seconds(), threading.Event(), False

    def run(self) -> None:
        while not self.done.wait(2.0):
            if cpu_seconds() - self.start_cpu >= self.seconds:
                self.spent = True
                os.kill(os.getpid(), signal.SIGTERM)
                return


def train_and_test(hypes: str, data: str, run_dir: str, budget_s: float, iters: int | None) -> dict[str, float]:
    sets = [f"data.data_dir={data}", "details.device=cpu", "logging.progress_bar=false",
            "solver.test_interval=1000000", "test.evaluator=coco_keypoints"]
    if iters:
        sets.append(f"solver.max_iters={iters}")
    common = ["--hypes", hypes, "--tmp_dir", run_dir, *[a for s in sets for a in ("--set", s)]]
    budget = Budget(budget_s)
    start_cpu, start = cpu_seconds(), time.perf_counter()
    budget.start()
    code = run_tasks.main(common)
    budget.done.set()
    cpu, minutes = (cpu_seconds() - start_cpu) / 60, (time.perf_counter() - start) / 60
    if code not in (exitcodes.OK, exitcodes.STOPPED):
        raise SystemExit(f"training {hypes} failed (exit code {code})")
    if run_tasks.main([*common, "--phase", "test", "--resume", "latest"]) != exitcodes.OK:
        raise SystemExit(f"test phase of {hypes} failed")
    with open(os.path.join(run_dir, rundir.RESULTS)) as fh:
        metrics = json.load(fh)["metrics"]
    trained = max((e["step"] for e in read_events(os.path.join(run_dir, rundir.METRICS)) if e["phase"] == "train"),
                  default=0)
    return {"ap": round(metrics["ap"], 4), "ap50": round(metrics["ap50"], 4), "ap75": round(metrics["ap75"], 4),
            "cpu_minutes": round(cpu, 2), "minutes": round(minutes, 2), "iters": trained,
            "stopped_by_budget": budget.spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypes", nargs="+", help=f"default: {HYPES[0]} (and {BOTTOM_UP_HYPES} when present)")
    parser.add_argument("--data", help="an existing sticks set (default: generate one in a temporary folder)")
    parser.add_argument("--budget-cpu-minutes", type=float, default=GOAL_CPU_MINUTES)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--iters", type=int, help="override solver.max_iters")
    parser.add_argument("--run-dir", help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    hypes = args.hypes or HYPES + ([BOTTOM_UP_HYPES] if os.path.isfile(os.path.join(REPO, BOTTOM_UP_HYPES)) else [])
    torch.set_num_threads(args.threads)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cauchy-pose-sticks-") as tmp:
        data = args.data or os.path.join(tmp, "sticks")
        if not args.data:
            prepare_shapes(data, "scripts/pose/sticks/prepare.py", train=800, val=100, size=160, seed=0)
        for path in hypes:
            name = os.path.splitext(os.path.basename(path))[0]
            run_dir = os.path.join(args.run_dir or tmp, name)
            figures[name] = train_and_test(os.path.join(REPO, path), data, run_dir, args.budget_cpu_minutes * 60,
                                           args.iters)
            f = figures[name]
            print(f"{name}: OKS AP {f['ap']:.3f} (AP50 {f['ap50']:.3f}, AP75 {f['ap75']:.3f}) after {f['iters']} "
                  f"iterations, {f['cpu_minutes']:.1f} CPU-min ({f['minutes']:.1f} min wall) on {args.threads} threads"
                  + (" (stopped by the budget)" if f["stopped_by_budget"] else ""))
    first = figures[os.path.splitext(os.path.basename(hypes[0]))[0]]
    load = os.getloadavg()[1]
    print(f"goal: AP >= {GOAL_AP} within {GOAL_CPU_MINUTES:g} CPU-minutes: "
          f"{'met' if first['ap'] >= GOAL_AP and first['cpu_minutes'] <= GOAL_CPU_MINUTES else 'NOT met'}; "
          f"CPU time counts the task and its data workers; machine load average {load:.1f}")
    print(json.dumps({"ap": first["ap"], "ratio": round(first["ap"] / GOAL_AP, 3), "cpu_minutes": first["cpu_minutes"], "goal_ap": GOAL_AP,
                      "budget_cpu_minutes": args.budget_cpu_minutes, "threads": args.threads,
                      "load_avg_5min": round(load, 2), "models": figures}))


if __name__ == "__main__":
    main()
