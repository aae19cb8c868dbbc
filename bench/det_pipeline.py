"""Detection input pipeline: Cauchy (cv2) vs torchvision.transforms.v2 with tv_tensors boxes (PIL
decoding, and decode_jpeg on uint8 tensors), beside the decode-only limit (``bench/pipelines.py``).

All read the same JPEGs (500x375, like Pascal VOC) with the same boxes through a DataLoader with
the same batch size and workers, and deliver normalised float32 batches with per-image boxes and
labels after: horizontal flip (p=0.5), random crop of 320x400 that clips boxes and drops those
left empty, resize to 300x300, normalise. torchvision sanitises boxes with
``SanitizeBoundingBoxes``; Cauchy decodes with cv2 and its crop drops empty boxes itself. All stack
images with ``default_collate`` (shared memory in the workers); Cauchy's collate also packs each
per-box field into one buffer per batch, where torchvision's references keep per-image target
tensors. Rounds alternate so machine-load drifts hit all alike; each round is one pass over the
images with persistent, warmed-up workers.

    python bench/det_pipeline.py [--images 512] [--batch-size 32] [--workers 2] [--rounds 5]

The last line of output is one JSON object with the figures, ``ratio`` (Cauchy over the faster
torchvision side), ``of_decode_only`` and ``of_decode_only_cpu`` (the same from CPU time per image,
steadier on a busy machine: ``bench/pipelines.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from functools import partial

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines import DECODE_LIMIT, baseline_loaders, model_images, pipeline_rates, to_model
from rounds import summary

from cauchy.datasets.det.base import DetDataset, RawImage
from cauchy.datasets.transforms import Compose, Normalize, RandomCrop, RandomHFlip, Resize
from cauchy.engine.trainer import training_loader
from cauchy.methods.det import collate_detection

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HEIGHT, WIDTH, CROP, OUT = 375, 500, (320, 400), (300, 300)


def write_images(root: str, count: int, seed: int) -> list[RawImage]:
    """Smooth random JPEGs (they compress like photos) with 1-8 random boxes each."""
    gen = np.random.default_rng(seed)
    images = []
    for i in range(count):
        low = gen.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        image = cv2.resize(low, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        n = int(gen.integers(1, 9))
        xy = gen.uniform(0, [WIDTH - 40, HEIGHT - 40], size=(n, 2))
        boxes = np.concatenate([xy, np.minimum(xy + gen.uniform(20, 200, size=(n, 2)), [WIDTH, HEIGHT])], axis=1)
        for x1, y1, x2, y2 in boxes.astype(int):
            cv2.rectangle(image, (x1, y1), (x2, y2), tuple(int(c) for c in gen.integers(0, 256, 3)), -1)
        path = os.path.join(root, f"{i:05d}.jpg")
        cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        images.append(RawImage(path=path, source=path, names=[f"c{k}" for k in gen.integers(0, 5, size=n)],
                               boxes=boxes.astype(np.float32), image_id=i, size=(HEIGHT, WIDTH)))
    return images


def torchvision_collate(batch: list) -> tuple[torch.Tensor, list]:
    """Images stacked by ``default_collate`` (into shared memory in a worker, as Cauchy's collate
    does); targets per image, as in torchvision's detection references."""
    images, targets = zip(*batch)
    return default_collate([image.as_subclass(torch.Tensor) for image in images]), list(targets)


def make_loaders(images: list[RawImage], batch_size: int, workers: int) -> dict[str, DataLoader]:
    cauchy_set = DetDataset(images, "bench", transforms=Compose([
        RandomHFlip(p=0.5), RandomCrop(size=list(CROP)), Resize(size=list(OUT)),
        Normalize(div_value=255.0, mean=MEAN, std=STD)]))
    records = cauchy_set.records

    def tv_transforms(normalise: bool) -> v2.Transform:
        return v2.Compose([v2.RandomHorizontalFlip(p=0.5), v2.RandomCrop(CROP), v2.Resize(OUT),
                           v2.SanitizeBoundingBoxes(), *to_model(normalise, MEAN, STD)])

    def target(index: int, size: tuple[int, int], read_mask: object) -> dict[str, torch.Tensor]:
        r = records[index]
        return {"boxes": tv_tensors.BoundingBoxes(torch.from_numpy(r.boxes), format="XYXY", canvas_size=size),
                "labels": torch.from_numpy(r.labels)}

    # Cauchy's side loads as the Trainer does: keyed batches, each sample with its own seeded stream.
    return {"cauchy": training_loader(cauchy_set, batch_size, collate_fn=partial(collate_detection, size_divisor=1),
                                      num_workers=workers, persistent_workers=workers > 0),
            **baseline_loaders([r.path for r in records], tv_transforms, target, torchvision_collate, batch_size,
                               workers)}


def check(batch: dict | tuple) -> int:
    """Normalised float batches of the output size with every box inside it."""
    images, boxes = (batch["image"], batch["boxes"]) if isinstance(batch, dict) else \
        (batch[0], [t["boxes"] for t in batch[1]])
    assert all(bool((b[:, 2:] <= torch.tensor(OUT[::-1])).all()) for b in boxes)
    return model_images(images, OUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-") as root:
        loaders = make_loaders(write_images(root, args.images, seed=0), args.batch_size, args.workers)
        rates, cpu = pipeline_rates(loaders, check, args.rounds)
        del loaders
    print(f"{args.images} JPEGs {WIDTH}x{HEIGHT} with 1-8 boxes -> hflip + crop {CROP[1]}x{CROP[0]} + resize "
          f"{OUT[1]}x{OUT[0]} + normalise, batch {args.batch_size}, {args.workers} workers, {args.rounds} rounds")
    print(json.dumps(summary(rates, "images/s", limit=DECODE_LIMIT, **cpu, images=args.images, batch_size=args.batch_size,
                             workers=args.workers, rounds=args.rounds)))


if __name__ == "__main__":
    main()
