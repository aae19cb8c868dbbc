"""Where an input pipeline's time goes: CPU microseconds per sample of each step of Cauchy's four
benchmark pipelines (``bench/{cls,det,seg,pose}_pipeline.py``, built as they build them), beside the
decode-only limit's work on the same files.

One process, one thread, CPU time (``time.thread_time``, so other processes' load inflates it far
less than wall time): the limit's ``decode_only`` sample; Cauchy's reader (read, decode, for seg the
mask's decode and check) and each transform in turn, on the sample's own seeded stream as training
draws it; the collate per sample (here into ordinary memory that the process keeps and reuses,
``keep_freed_memory``, as a worker reuses the shared memory of ``cauchy.datasets.batches``; the
batch's crossing to the main process is left out). ``of_decode_only`` is the limit's time over the sum of Cauchy's steps: the fraction of
the limit a pipeline doing these steps can reach with free inter-process transfer.

    python bench/pipeline_breakdown.py [--images 64] [--repeat 3]

The last line of output is one JSON object: per pipeline its steps (us per sample) and ``of_decode_only``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cls_pipeline
import det_pipeline
import pose_pipeline
import seg_pipeline
from pipelines import DECODE_LIMIT

from cauchy.datasets.io import keep_freed_memory
from cauchy.datasets.rng import SampleKey, sample_stream


def loaders_of(name: str, root: str, images: int) -> dict[str, Any]:
    """The benchmark's loaders, without workers (their datasets are what is timed here)."""
    if name == "cls":
        cls_pipeline.write_images(root, images, 8, 256, seed=0)
        return cls_pipeline.make_loaders(root, 64, 0)
    if name == "det":
        return det_pipeline.make_loaders(det_pipeline.write_images(root, images, seed=0), 32, 0)
    if name == "seg":
        return seg_pipeline.make_loaders(root, seg_pipeline.write_images(root, images, seed=0), 16, 0)
    pose_pipeline.prepare_shapes(root, "scripts/pose/sticks/prepare.py", train=images, val=0, size=320, seed=0)
    return pose_pipeline.make_loaders(root, 32, 0)


def cpu_us(run: Callable[[], Any], count: int, repeat: int) -> float:
    """The least thread CPU time of ``repeat`` calls of ``run`` (``count`` samples each), per sample."""
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        run()
        best = min(best, time.thread_time() - start)
    return best / count * 1e6


def apply(transform: Callable[[Any], Any], samples: list[Any]) -> list[Any]:
    """``transform`` of each sample, on the sample's own seeded stream (as training draws it)."""
    out = []
    for i, sample in enumerate(samples):
        with sample_stream(SampleKey(i, 0, 0)):
            out.append(transform(sample))
    return out


def breakdown(loaders: dict[str, Any], repeat: int) -> dict[str, float]:
    """us per sample: the limit, then Cauchy's reader, each transform and the collate."""
    limit, cauchy = loaders[DECODE_LIMIT], loaders["cauchy"]
    dataset = cauchy.dataset.dataset  # inside the per-sample seeded streams
    count = len(dataset)
    steps = {DECODE_LIMIT: cpu_us(lambda: [limit.dataset[i] for i in range(count)], count, repeat)}
    compose, dataset.transforms = dataset.transforms, None
    try:
        steps["read"] = cpu_us(lambda: [dataset[i] for i in range(count)], count, repeat)
        samples = [dataset[i] for i in range(count)]
    finally:
        dataset.transforms = compose
    for transform in compose.transforms:
        steps[type(transform).__name__] = cpu_us(partial(apply, transform, samples), count, repeat)
        samples = apply(transform, samples)
    batch = 16
    steps["collate"] = cpu_us(lambda: [cauchy.collate_fn(samples[i:i + batch]) for i in range(0, count, batch)],
                              count, repeat)
    steps["of_decode_only"] = round(steps[DECODE_LIMIT] / sum(v for k, v in steps.items() if k != DECODE_LIMIT), 3)
    return {k: round(v, 1) if k != "of_decode_only" else v for k, v in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    figures = {}
    for name in ("cls", "det", "seg", "pose"):
        with tempfile.TemporaryDirectory(prefix="cauchy-bench-") as root:
            figures[name] = breakdown(loaders_of(name, root, args.images), args.repeat)
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figures[name].items()))
    # ratio: the lowest of_decode_only, the decode-only limit's CPU over the whole pipeline's, per task
    print(json.dumps({**figures, "images": args.images, "repeat": args.repeat,
                      "ratio": min(f["of_decode_only"] for f in figures.values())}))


if __name__ == "__main__":
    main()
