"""Trains a detector on the synthetic shapes set on the CPU and reports its mAP@0.5 and the minutes it took.

    python bench/det_shapes_map.py [--hypes hypes/det/yolov3_small_shapes.json] [--data DIR]
                                   [--iters N] [--threads N] [--run-dir DIR]

Without ``--data`` the set is generated first (scripts/det/shapes/prepare.py, 800 train / 200 val
images; not timed). Training runs through ``run_tasks.py`` exactly as a job would, on the CPU, with
validation only at the end; ``minutes`` is the wall-clock time of the whole train phase, that final
validation included (``cpu_minutes`` and the load average tell how much of it other processes
took on a shared machine). ``map50`` is the VOC mAP@0.5 of that validation; a test phase then
adds COCO's figures (``coco_map``, ``coco_map50``).

The last line of output is one JSON object with ``map50`` and ``minutes``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from typing import Any

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import run_tasks  # noqa: E402
from cauchy import exitcodes  # noqa: E402
from cauchy.visualizer import read_events  # noqa: E402


def prepare_shapes(out: str, script: str = "scripts/det/shapes/prepare.py", **params: Any) -> None:
    """Run a data ``prepare.py`` (scripts/ is no package) into ``out``: det's shapes, or another by its
    path (seg's shapes, pose's sticks), with ``params`` for its ``prepare`` (default: its own)."""
    spec = importlib.util.spec_from_file_location("shapes_prepare", os.path.join(REPO, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.prepare(out, **params)


def last_value(run_dir: str, phase: str, name: str) -> float:
    values = [e["value"] for e in read_events(os.path.join(run_dir, "metrics.jsonl"))
              if e["phase"] == phase and e["name"] == name]
    if not values:
        raise SystemExit(f"no {phase} {name} in {run_dir}/metrics.jsonl")
    return values[-1]


def shapes_parser(description: str, hypes: str, threads: int | None) -> argparse.ArgumentParser:
    """The arguments of the shapes training benchmarks (det here, seg in seg_shapes_miou.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--hypes", default=os.path.join(REPO, hypes))
    parser.add_argument("--data", help="an existing shapes set (default: generate one in a temporary folder)")
    parser.add_argument("--iters", type=int, help="override solver.max_iters")
    parser.add_argument("--threads", type=int, default=threads, help="torch CPU threads")
    parser.add_argument("--run-dir", help="keep the run here (default: a temporary folder)")
    return parser


def train_timed(hypes: str, data: str, run_dir: str, iters: int | None) -> tuple[list[str], float, float, float]:
    """Trains through ``run_tasks.main`` on the CPU, validating only at the end: ``(its arguments,
    wall-clock minutes, CPU minutes, 5-minute load average)``."""
    sets = [f"data.data_dir={data}", "details.device=cpu", "logging.progress_bar=false", "solver.test_interval=1000000"]
    if iters:
        sets.append(f"solver.max_iters={iters}")
    common = ["--hypes", hypes, "--tmp_dir", run_dir, *[a for s in sets for a in ("--set", s)]]
    start, cpu_start = time.perf_counter(), os.times()
    if run_tasks.main(common) != exitcodes.OK:
        raise SystemExit("training failed")
    minutes = (time.perf_counter() - start) / 60
    cpu_minutes = sum(getattr(os.times(), k) - getattr(cpu_start, k) for k in
                      ("user", "system", "children_user", "children_system")) / 60
    return common, minutes, cpu_minutes, os.getloadavg()[1]


def main() -> None:
    args = shapes_parser(__doc__.splitlines()[0], "hypes/det/yolov3_small_shapes.json", os.cpu_count()).parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="cauchy-shapes-") as tmp:
        data = args.data or os.path.join(tmp, "shapes")
        if not args.data:
            prepare_shapes(data)
        run_dir = args.run_dir or os.path.join(tmp, "run")
        common, minutes, cpu_minutes, load = train_timed(args.hypes, data, run_dir, args.iters)
        map50 = last_value(run_dir, "val", "map50")
        if run_tasks.main([*common, "--phase", "test", "--set", "test.evaluator=coco"]) != exitcodes.OK:
            raise SystemExit("test phase failed")
        coco_map, coco_map50 = last_value(run_dir, "test", "map"), last_value(run_dir, "test", "map50")
        iters = int(last_value(run_dir, "train", "max_iters"))
    print(f"{os.path.basename(args.hypes)}: {iters} iterations in {minutes:.1f} min on {args.threads} CPU threads: "
          f"VOC mAP@0.5 {map50:.3f}, COCO mAP {coco_map:.3f} (AP50 {coco_map50:.3f})")
    print(f"  CPU time {cpu_minutes:.1f} min over {args.threads} threads; machine load average {load:.1f} "
          f"(other processes share the cores when it exceeds {args.threads})")
    print(json.dumps({"map50": round(map50, 4), "minutes": round(minutes, 2), "coco_map": round(coco_map, 4),
                      "coco_map50": round(coco_map50, 4), "iters": iters, "threads": args.threads,
                      "cpu_minutes": round(cpu_minutes, 2), "load_avg_5min": round(load, 2),
                      "hypes": os.path.relpath(args.hypes, REPO)}))


if __name__ == "__main__":
    main()
