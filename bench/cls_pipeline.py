"""Classification input pipeline: Cauchy (cv2) vs torchvision (PIL + transforms.v2, and
decode_jpeg + v2 on uint8 tensors), beside the decode-only limit (``bench/pipelines.py``).

All read the same JPEG class folders through a DataLoader with the same batch size and workers
and deliver normalised float32 NCHW batches after RandomResizedCrop(224) + horizontal flip.
Rounds alternate between the sides so drifts in machine load hit all alike; each round is one
full pass over the images with persistent, already warmed-up workers.

The images are smooth random content (upscaled random low-resolution noise plus random
rectangles), which compresses like a photo; pure per-pixel noise would make JPEG decoding,
the same libjpeg-turbo work for both sides, dominate unrealistically.

    python bench/cls_pipeline.py [--images 512] [--batch-size 64] [--workers 2] [--rounds 5]

The last line of output is one JSON object with the figures: ``ratio`` (Cauchy over the faster
torchvision side), ``of_decode_only`` (Cauchy as a fraction of the decode-only limit) and
``of_decode_only_cpu`` (the same from CPU time per image, steadier on a busy machine).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate
from torchvision.transforms import v2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines import DECODE_LIMIT, baseline_loaders, model_images, pipeline_rates, to_model
from rounds import summary

import cauchy.datasets  # noqa: F401  (registers the readers)
from cauchy.datasets.transforms import Compose, Normalize, RandomHFlip, RandomResizedCrop
from cauchy.engine.trainer import training_loader
from cauchy.methods.cls import ImageClassifier
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

    def tv_transforms(normalise: bool) -> v2.Transform:
        return v2.Compose([v2.RandomResizedCrop(224), v2.RandomHorizontalFlip(), *to_model(normalise, MEAN, STD)])

    paths, labels = zip(*cauchy_set.samples)  # the same files and labels for every side
    # Cauchy's side loads as the Trainer does: keyed batches, each sample with its own seeded stream,
    # collated by the method.
    return {"cauchy": training_loader(cauchy_set, batch_size, collate_fn=ImageClassifier.collate, num_workers=workers,
                                      persistent_workers=workers > 0),
            **baseline_loaders(list(paths), tv_transforms, lambda index, size, read_mask: labels[index],
                               default_collate, batch_size, workers)}


def check(batch: dict | list) -> int:
    """Cauchy's batches are dicts, torchvision's (images, labels) pairs: normalised 224x224 floats."""
    return model_images(batch["image"] if isinstance(batch, dict) else batch[0], (224, 224))


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
        rates, cpu = pipeline_rates(loaders, check, args.rounds)
        del loaders
    print(f"{args.images} JPEGs 256x256 -> RandomResizedCrop(224) + hflip + normalise, "
          f"batch {args.batch_size}, {args.workers} workers, {args.rounds} rounds")
    print(json.dumps(summary(rates, "images/s", limit=DECODE_LIMIT, **cpu, images=args.images, batch_size=args.batch_size,
                             workers=args.workers, rounds=args.rounds)))

if __name__ == "__main__":
    main()
