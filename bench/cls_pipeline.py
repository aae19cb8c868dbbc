"""Classification input pipeline: Cauchy (cv2) vs torchvision (PIL + transforms.v2), side by side.

Both read the same JPEG class folders through a DataLoader with the same batch size and workers
and deliver normalised float32 NCHW batches after RandomResizedCrop(224) + horizontal flip.
Rounds alternate between the two so drifts in machine load hit both alike; each round is one
full pass over the images with persistent, already warmed-up workers.

The images are smooth random content (upscaled random low-resolution noise plus random
rectangles), which compresses like a photo; pure per-pixel noise would make JPEG decoding,
the same libjpeg-turbo work for both sides, dominate unrealistically.

    python bench/cls_pipeline.py [--images 512] [--batch-size 64] [--workers 2] [--rounds 5]

The last line of output is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision import datasets as tv_datasets
from torchvision.transforms import v2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rounds import alternate, summary

import cauchy.datasets  # noqa: F401  (registers the readers)
from cauchy.datasets.transforms import Compose, Normalize, RandomHFlip, RandomResizedCrop
from cauchy.engine.trainer import training_loader
from cauchy.registry import DATASETS

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_images(root: str, count: int, classes: int, size: int, seed: int) -> None:
    gen = np.random.default_rng(seed)
    for i in range(count):
        folder = os.path.join(root, "train", f"class_{i % classes}")
        os.makedirs(folder, exist_ok=True)
        low = gen.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        image = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        for _ in range(4):
            x0, y0 = gen.integers(0, size - 32, size=2)
            w, h = gen.integers(16, size // 2, size=2)
            color = tuple(int(c) for c in gen.integers(0, 256, size=3))
            cv2.rectangle(image, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), color, -1)
        cv2.imwrite(os.path.join(folder, f"{i:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def make_loaders(root: str, batch_size: int, workers: int) -> dict[str, DataLoader]:
    cauchy_set = DATASETS.build("image_folder", root=root, split="train", transforms=Compose([
        RandomResizedCrop(size=224), RandomHFlip(p=0.5), Normalize(div_value=255.0, mean=MEAN, std=STD)]))
    tv_set = tv_datasets.ImageFolder(os.path.join(root, "train"), transform=v2.Compose([
        v2.RandomResizedCrop(224), v2.RandomHorizontalFlip(), v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]))
    common = dict(num_workers=workers, persistent_workers=workers > 0)
    # Cauchy's side loads as the Trainer does: keyed batches, each sample with its own seeded stream.
    return {"cauchy": training_loader(cauchy_set, batch_size, **common),
            "torchvision": DataLoader(tv_set, batch_size=batch_size, shuffle=True, **common)}


def one_pass(loader: DataLoader) -> float:
    """Images per second over one full pass; checks that the batches are normalised floats.

    Both use the default collate: Cauchy's items are dicts, torchvision's (image, label) tuples.
    """
    count = 0
    start = time.perf_counter()
    for batch in loader:
        images, labels = (batch["image"], batch["label"]) if isinstance(batch, dict) else batch
        assert images.dtype == torch.float32 and images.shape[1:] == (3, 224, 224), images.shape
        count += len(labels)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-") as root:
        write_images(root, args.images, args.classes, 256, seed=0)
        loaders = make_loaders(root, args.batch_size, args.workers)
        rates = alternate({name: partial(one_pass, loader) for name, loader in loaders.items()}, args.rounds)
        del loaders
    print(f"{args.images} JPEGs 256x256 -> RandomResizedCrop(224) + hflip + normalise, "
          f"batch {args.batch_size}, {args.workers} workers, {args.rounds} rounds")
    print(json.dumps(summary(rates, "images/s", images=args.images, batch_size=args.batch_size,
                             workers=args.workers, rounds=args.rounds)))

if __name__ == "__main__":
    main()
