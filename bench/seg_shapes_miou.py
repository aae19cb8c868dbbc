"""Trains the small CPU seg model on the synthetic seg shapes set and reports its mIoU and the minutes it took.

    python bench/seg_shapes_miou.py [--hypes hypes/seg/tiny_unet_shapes.json] [--data DIR]
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

import json
import os
import sys
import tempfile

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.dirname(os.path.abspath(__file__))]

from det_shapes_map import last_value, prepare_shapes, shapes_parser, train_timed  # noqa: E402


def main() -> None:
    args = shapes_parser(__doc__.splitlines()[0], "hypes/seg/tiny_unet_shapes.json", 2).parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="cauchy-seg-shapes-") as tmp:
        data = args.data or os.path.join(tmp, "seg_shapes")
        if not args.data:
            prepare_shapes(data, "scripts/seg/shapes/prepare.py")
        run_dir = args.run_dir or os.path.join(tmp, "run")
        _, minutes, cpu_minutes, load = train_timed(args.hypes, data, run_dir, args.iters)
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
