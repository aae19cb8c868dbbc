"""Trains the small CPU seg model on the synthetic seg shapes set and reports its mIoU and the minutes it took.

    python bench/seg_shapes_miou.py [--hypes hypes/seg/lraspp_mobilenetv3small_shapes.json] [--data DIR]
                                    [--iters N] [--threads 2] [--run-dir DIR]

Without ``--data`` the set is generated first (scripts/seg/shapes/prepare.py, 400 train / 100 val
images of at most 128 pixels; not timed). Training runs through ``run_tasks.py`` as a job would, on
the CPU with ``--threads`` torch threads (2 by default: the goal is mIoU >= 0.80 within 10 minutes
on 2 threads), with validation only at the end, at each image's original size; ``minutes`` is the
wall-clock time of the whole train phase, that validation included (``cpu_minutes`` and the load
average tell how much of it other processes took on a shared machine).

The last line of output is one JSON object with ``miou`` and ``minutes``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.dirname(os.path.abspath(__file__))]

from det_shapes_map import last_value  # noqa: E402

import run_tasks  # noqa: E402
from cauchy import exitcodes  # noqa: E402


def prepare_seg_shapes(out: str) -> None:
    spec = importlib.util.spec_from_file_location("seg_shapes_prepare", os.path.join(REPO, "scripts/seg/shapes/prepare.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.prepare(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypes", default=os.path.join(REPO, "hypes/seg/lraspp_mobilenetv3small_shapes.json"))
    parser.add_argument("--data", help="an existing seg shapes set (default: generate one in a temporary folder)")
    parser.add_argument("--iters", type=int, help="override solver.max_iters")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--run-dir", help="keep the run here (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="cauchy-seg-shapes-") as tmp:
        data = args.data or os.path.join(tmp, "seg_shapes")
        if not args.data:
            prepare_seg_shapes(data)
        run_dir = args.run_dir or os.path.join(tmp, "run")
        sets = [f"data.data_dir={data}", "details.device=cpu", "logging.progress_bar=false",
                "solver.test_interval=1000000"]
        if args.iters:
            sets.append(f"solver.max_iters={args.iters}")
        common = ["--hypes", args.hypes, "--tmp_dir", run_dir, *[a for s in sets for a in ("--set", s)]]
        start, cpu_start = time.perf_counter(), os.times()
        if run_tasks.main(common) != exitcodes.OK:
            raise SystemExit("training failed")
        minutes = (time.perf_counter() - start) / 60
        cpu_minutes = sum(getattr(os.times(), k) - getattr(cpu_start, k) for k in
                          ("user", "system", "children_user", "children_system")) / 60
        load = os.getloadavg()[1]
        miou, pixel_acc = last_value(run_dir, "val", "miou"), last_value(run_dir, "val", "pixel_acc")
        iters = int(last_value(run_dir, "train", "max_iters"))
    print(f"{os.path.basename(args.hypes)}: {iters} iterations in {minutes:.1f} min on {args.threads} CPU threads: "
          f"mIoU {miou:.3f} (goal >= 0.80 within 10 min), pixel accuracy {pixel_acc:.3f}")
    print(f"  CPU time {cpu_minutes:.1f} min; machine load average {load:.1f} "
          f"(other processes share the cores when it exceeds {args.threads})")
    print(json.dumps({"miou": round(miou, 4), "minutes": round(minutes, 2), "pixel_acc": round(pixel_acc, 4),
                      "iters": iters, "threads": args.threads, "cpu_minutes": round(cpu_minutes, 2),
                      "load_avg_5min": round(load, 2), "hypes": os.path.relpath(args.hypes, REPO)}))


if __name__ == "__main__":
    main()
