"""Segmentation input pipeline: Cauchy (cv2) vs torchvision.transforms.v2 with ``tv_tensors.Mask``
(PIL decoding, and decode_jpeg on uint8 tensors), beside the decode-only limit (``bench/pipelines.py``).

All read the same JPEGs (500x375, like Pascal VOC) and palette PNG label maps through a DataLoader
with the same batch size and workers, and deliver NCHW images (Cauchy's and the decode_jpeg side's
uint8, normalised on the model's device; the PIL side's normalised float32) with uint8 label maps
(widened to int64 where the loss runs) after: random scale by a factor in [0.5, 2.0] (torchvision: ``RandomResize`` of the shorter
side over the same range), random crop of 320x320 padded where the image is smaller (image 0, mask
255, the ignore value), horizontal flip (p=0.5), normalise. Cauchy scales and crops in one step
(``random_scale_crop``: the window is drawn in the original image and only it is resized; the same
augmentation as ``random_scale`` + ``random_crop``, which torchvision's side does). Cauchy reads
through its VOC segmentation reader and loads as the Trainer does (keyed batches, per-sample seeded
streams, the seg method's collate, which also carries each image's original mask for evaluation).
The decode-only limit decodes each sample's JPEG and its PNG mask (to label indices, with PIL).
Rounds alternate so machine-load drifts hit all sides alike; each round is one pass over the
images with persistent, warmed-up workers.

    python bench/seg_pipeline.py [--images 384] [--batch-size 16] [--workers 2] [--rounds 3]

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
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines import DECODE_LIMIT, baseline_loaders, model_images, pipeline_rates, to_model
from rounds import summary

import cauchy.datasets  # noqa: F401  (registers the readers)
from cauchy.datasets.seg.palette import voc_palette
from cauchy.datasets.transforms import Compose, Normalize, RandomHFlip, RandomScaleCrop
from cauchy.engine.trainer import training_loader
from cauchy.methods.seg import collate_segmentation
from cauchy.registry import DATASETS

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HEIGHT, WIDTH, CROP, IGNORE, CLASSES = 375, 500, 320, 255, 5


def write_images(root: str, count: int, seed: int) -> list[str]:
    """Smooth random JPEGs with 1-6 filled shapes, and palette PNGs labelling them (ids)."""
    gen = np.random.default_rng(seed)
    for folder in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    palette = voc_palette().flatten().tolist()
    ids = []
    for i in range(count):
        low = gen.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        image = cv2.resize(low, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        labels = np.zeros((HEIGHT, WIDTH), np.uint8)
        for _ in range(int(gen.integers(1, 7))):
            x, y = (int(v) for v in gen.uniform(0, [WIDTH - 40, HEIGHT - 40]))
            w, h = (int(v) for v in gen.uniform(20, 200, size=2))
            cls = int(gen.integers(1, CLASSES))
            cv2.rectangle(image, (x, y), (x + w, y + h), tuple(int(c) for c in gen.integers(0, 256, 3)), -1)
            cv2.rectangle(labels, (x, y), (x + w, y + h), cls, -1)
        name = f"{i:05d}"
        cv2.imwrite(os.path.join(root, "JPEGImages", name + ".jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        png = Image.fromarray(labels, mode="P")
        png.putpalette(palette)
        png.save(os.path.join(root, "SegmentationClass", name + ".png"))
        ids.append(name)
    with open(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), "w") as fh:
        fh.write("\n".join(ids) + "\n")
    with open(os.path.join(root, "classes.txt"), "w") as fh:
        fh.write("\n".join(["background"] + [f"c{k}" for k in range(1, CLASSES)]) + "\n")
    return ids


def torchvision_collate(batch: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and label maps stacked, the maps uint8 as read (widened where the loss runs, as
    Cauchy's are)."""
    images, masks = zip(*batch)
    return (default_collate([i.as_subclass(torch.Tensor) for i in images]),
            default_collate([m.as_subclass(torch.Tensor) for m in masks]))


def make_loaders(root: str, ids: list[str], batch_size: int, workers: int) -> dict[str, DataLoader]:
    cauchy_set = DATASETS.build("voc_seg", root=root, split="train", transforms=Compose([
        RandomScaleCrop(size=CROP, scale=[0.5, 2.0], fill=0, mask_fill=IGNORE), RandomHFlip(p=0.5),
        Normalize(div_value=255.0, mean=MEAN, std=STD)]))

    def tv_transforms(normalise: bool) -> v2.Transform:
        return v2.Compose([
            v2.RandomResize(HEIGHT // 2, HEIGHT * 2 + 1),
            v2.RandomCrop(CROP, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE}),
            v2.RandomHorizontalFlip(p=0.5), *to_model(normalise, MEAN, STD)])

    masks = [os.path.join(root, "SegmentationClass", name + ".png") for name in ids]

    def target(index: int, size: tuple[int, int], read_mask: Any) -> tv_tensors.Mask:
        return read_mask(masks[index])

    paths = [os.path.join(root, "JPEGImages", name + ".jpg") for name in ids]
    return {"cauchy": training_loader(cauchy_set, batch_size, collate_fn=collate_segmentation, num_workers=workers,
                                      persistent_workers=workers > 0),
            **baseline_loaders(paths, tv_transforms, target, torchvision_collate, batch_size, workers, masks)}


def check(batch: dict | tuple) -> int:
    """CROP x CROP images with uint8 label maps of the same size."""
    images, masks = (batch["image"], batch["mask"]) if isinstance(batch, dict) else batch
    assert masks.dtype == torch.uint8 and tuple(masks.shape[-2:]) == (CROP, CROP), (masks.dtype, masks.shape)
    return model_images(images, (CROP, CROP))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-") as root:
        ids = write_images(root, args.images, seed=0)
        loaders = make_loaders(root, ids, args.batch_size, args.workers)
        rates, cpu = pipeline_rates(loaders, check, args.rounds)
        del loaders
    print(f"{args.images} JPEGs {WIDTH}x{HEIGHT} + palette PNG masks -> random scale [0.5, 2] + crop {CROP} (pad, "
          f"mask {IGNORE}) + hflip + normalise, batch {args.batch_size}, {args.workers} workers, {args.rounds} rounds")
    print(json.dumps(summary(rates, "images/s", limit=DECODE_LIMIT, **cpu, images=args.images, batch_size=args.batch_size,
                             workers=args.workers, rounds=args.rounds)))


if __name__ == "__main__":
    main()
