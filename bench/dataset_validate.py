"""Dataset validation + statistics vs a plain decode loop: how much checking costs beyond decoding.

Side ``inspect``: ``cauchy.datasets.tools.inspect_dataset.inspect`` on a Pascal VOC detection set
(recognition, each split opened by its reader, every image loaded through the reader in worker
processes with its boxes checked, statistics, previews, the report files). Side ``imdecode``: the
same image files, the same number of forked worker processes and the same chunking, each file only
``np.fromfile`` + ``cv2.imdecode``. Rounds alternate between the sides (``bench/rounds.py``); the
rate is images per second of wall time, CPU time of both sides (this process and its workers) and
the load average are printed too, since the machine is shared.

The images are smooth random content (upscaled low-resolution noise plus rectangles), which
compresses like a photo.

    python bench/dataset_validate.py [--images 1200] [--size 480] [--workers 2] [--rounds 21]

The last line of output is one JSON object: ``ratio`` (inspect over imdecode, each side's median rate;
the goal is >= 0.8) and ``cpu_ratio`` (imdecode's CPU time over inspect's, both sides' processes): on a machine shared by
sessions (Linux groups each session's processes for CPU) the wall-clock ratio follows the CPU ratio,
moved by how busy the others are from round to round.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rounds import alternate, summary

from cauchy.datasets.io import keep_freed_memory
from cauchy.datasets.tools.check_worker import Chunk, chunks
from cauchy.datasets.tools.inspect_dataset import inspect

CLASSES = ("cat", "dog", "bird")


def write_voc(root: str, count: int, size: int, seed: int) -> dict[str, list[str]]:
    """``count`` JPEGs of ``size`` x ``4/3 size`` with three boxes each, split 80/20; each split's image paths."""
    gen = np.random.default_rng(seed)
    h, w = size, size * 4 // 3
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    ids, paths = [], []
    for i in range(count):
        image = cv2.resize(gen.integers(0, 256, size=(12, 16, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        objects = []
        for k in range(3):
            x0, y0 = int(gen.integers(0, w - 64)), int(gen.integers(0, h - 64))
            x1, y1 = x0 + int(gen.integers(16, min(200, w - x0))), y0 + int(gen.integers(16, min(200, h - y0)))
            cv2.rectangle(image, (x0, y0), (x1, y1), tuple(int(c) for c in gen.integers(0, 256, 3)), -1)
            objects.append(f"<object><name>{CLASSES[(i + k) % 3]}</name><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}"
                           f"</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
        name = f"{i:06d}"
        paths.append(os.path.join(root, "JPEGImages", f"{name}.jpg"))
        cv2.imwrite(paths[-1], image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        Path(root, "Annotations", f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>{w}</width><height>{h}</height></size>"
            f"{''.join(objects)}</annotation>")
        ids.append(name)
    cut = count * 4 // 5
    Path(root, "ImageSets/Main/train.txt").write_text("\n".join(ids[:cut]) + "\n")
    Path(root, "ImageSets/Main/val.txt").write_text("\n".join(ids[cut:]) + "\n")
    return {"train": paths[:cut], "val": paths[cut:]}


_PATHS: dict[str, list[str]] = {}  # inherited by the forked decode workers


def _decode(chunk: Chunk) -> int:
    split, indices = chunk
    for index in indices:
        image = cv2.imdecode(np.fromfile(_PATHS[split][index], dtype=np.uint8), cv2.IMREAD_COLOR_RGB)
        assert image is not None
    return len(indices)


def decode_loop(paths: dict[str, list[str]], workers: int) -> float:
    """Images/s of the plain loop, in the processes and chunks the inspection uses (its workers' malloc
    setting too: see ``keep_freed_memory``)."""
    _PATHS.clear()
    _PATHS.update(paths)
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers, initializer=keep_freed_memory) as pool:
        done = sum(pool.imap_unordered(_decode, [chunk for split, files in paths.items()
                                                 for chunk in chunks(split, len(files), workers)]))
    return done / (time.perf_counter() - start)


def inspect_run(root: str, outs: str, count: int, workers: int) -> float:
    """Into a new folder each time, as the service gives each version its own (on ext4, a file renamed
    over an existing one is flushed first: a few ms each, which no inspection in the service pays)."""
    out = tempfile.mkdtemp(dir=outs)
    start = time.perf_counter()
    report = inspect(root, Path(out), workers=workers)
    assert report["ok"] and report["counts"]["images"] == count, report["problems"][:3]
    return count / (time.perf_counter() - start)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=21)  # a round's rate moves by a third on a loaded machine
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-") as tmp:
        root = os.path.join(tmp, "voc")
        paths = write_voc(root, args.images, args.size, seed=0)
        print(f"{args.images} JPEGs of {args.size * 4 // 3}x{args.size}, {args.workers} worker processes, "
              f"load average {os.getloadavg()[0]:.1f}")
        cpu = {"inspect": 0.0, "imdecode": 0.0}

        def timed(name: str, run: callable) -> callable:
            def call() -> float:
                before = cpu_seconds()
                rate = run()
                cpu[name] += cpu_seconds() - before
                return rate
            return call

        wall = time.perf_counter()
        rates = alternate({"inspect": timed("inspect", lambda: inspect_run(root, tmp, args.images,
                                                                            args.workers)),
                           "imdecode": timed("imdecode", lambda: decode_loop(paths, args.workers))}, args.rounds)
        figures = summary(rates, "images/s", images=args.images, workers=args.workers,
                          wall_s=round(time.perf_counter() - wall, 1), load_average=round(os.getloadavg()[0], 1),
                          cpu_ms_per_image={name: round(1000 * s / (args.images * (args.rounds + 1)), 2)
                                            for name, s in cpu.items()},
                          cpu_ratio=round(cpu["imdecode"] / cpu["inspect"], 3))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
