"""Top-down pose input pipeline: Cauchy (one cv2 warp per person) vs torchvision.transforms.v2 with
``tv_tensors.KeyPoints`` doing the same geometry, beside the decode-only limit (``bench/pipelines.py``).

All read the same sticks JPEGs (scripts/pose/sticks/prepare.py) through a DataLoader with the same
batch size and workers, one sample per annotated person, and deliver NCHW person crops of 256x192
(Cauchy's and the decode_jpeg side's uint8, normalised on the model's device; the PIL side's
normalised float32) with their keypoints [B, K, 3] after: the person's box grown to 3:4 and by 1.25,
scaled by a factor in [0.75, 1.25], rotated by up to 30 degrees either way, mirrored with p=0.5
(left/right joints swapped), normalised; joints leaving the crop become invisible. Then both turn the
keypoints into 64x48 Gaussian heatmaps with weights in the main process, by the same function
(``cauchy.datasets.pose.heatmaps.gaussian_heatmaps``, as the top-down method does). Cauchy reads
through its COCO keypoints reader (``top_down_affine`` + ``random_hflip`` + ``normalize``) and
loads as the Trainer does (keyed batches, per-sample seeded streams). torchvision crops the window
(``F.resized_crop`` to 256x192), then ``F.affine`` (scale and rotation about the centre) and
``F.horizontal_flip``, on the image and a ``KeyPoints`` of the person's joints, then swaps the pairs.
Rounds alternate so machine-load drifts hit all sides alike.

    python bench/pose_pipeline.py [--images 160] [--size 320] [--batch-size 32] [--workers 2] [--rounds 3]

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

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle torch threads sleep: on a shared machine, spinning ones
# steal the cores every side needs (the main process draws heatmaps); set before torch loads OpenMP

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.dirname(os.path.abspath(__file__))]

from det_shapes_map import prepare_shapes  # noqa: E402
from pipelines import DECODE_LIMIT, baseline_loaders, model_images, pipeline_rates  # noqa: E402
from rounds import summary  # noqa: E402

from cauchy.datasets.pose.coco import coco_keypoints  # noqa: E402
from cauchy.datasets.pose.heatmaps import gaussian_heatmaps  # noqa: E402
from cauchy.datasets.pose.transforms import TopDownAffine, person_window  # noqa: E402
from cauchy.datasets.transforms import Compose, Normalize, RandomHFlip  # noqa: E402
from cauchy.engine.trainer import training_loader  # noqa: E402
from cauchy.methods.base import Method  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HEIGHT, WIDTH, STRIDE, SIGMA = 256, 192, 4, 2.0
SCALE, ROTATION, BOX_SCALE = (0.75, 1.25), 30.0, 1.25


class TorchvisionTopDown:
    """The same geometry as ``top_down_affine`` + ``random_hflip`` with torchvision's functional v2 ops."""

    def __init__(self, flip_index: np.ndarray, seed: int, normalise: bool) -> None:
        self.flip_index = torch.as_tensor(flip_index)
        self.gen = np.random.default_rng(seed)
        self.normalise = normalise

    def __call__(self, image: Any, target: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        size = tuple(image.shape[-2:]) if isinstance(image, torch.Tensor) else (image.height, image.width)
        image = F.to_image(image)
        cx, cy, bw, bh = person_window(target["box"], WIDTH / HEIGHT, BOX_SCALE)
        points = tv_tensors.KeyPoints(target["keypoints"][:, :2], canvas_size=size)
        top, left = round(cy - bh / 2), round(cx - bw / 2)
        image = F.resized_crop(image, top, left, round(bh), round(bw), [HEIGHT, WIDTH], antialias=False)
        points = F.resized_crop(points, top, left, round(bh), round(bw), [HEIGHT, WIDTH])
        factor, degrees = self.gen.uniform(*SCALE), self.gen.uniform(-ROTATION, ROTATION)
        image = F.affine(image, angle=degrees, translate=[0, 0], scale=factor, shear=[0.0, 0.0])
        points = F.affine(points, angle=degrees, translate=[0, 0], scale=factor, shear=[0.0, 0.0])
        visible = target["keypoints"][:, 2].clone()
        if self.gen.random() < 0.5:
            image, points = F.horizontal_flip(image), F.horizontal_flip(points)
            points, visible = points[self.flip_index], visible[self.flip_index]
        xy = points.as_subclass(torch.Tensor)
        outside = (xy[:, 0] < 0) | (xy[:, 0] >= WIDTH) | (xy[:, 1] < 0) | (xy[:, 1] >= HEIGHT)
        visible[outside] = 0
        if self.normalise:
            image = F.normalize(F.to_dtype(image, torch.float32, scale=True), MEAN, STD)
        return image.as_subclass(torch.Tensor), torch.cat([xy, visible[:, None]], dim=1)


def make_loaders(root: str, batch_size: int, workers: int) -> dict[str, DataLoader]:
    cauchy_set = coco_keypoints(root, "train", image_dir="images", transforms=Compose([
        TopDownAffine(size=[HEIGHT, WIDTH], box_scale=BOX_SCALE, scale=SCALE, rotation=ROTATION), RandomHFlip(p=0.5),
        Normalize(mean=MEAN, std=STD)]))
    people = [(record.path, record.boxes[p], record.keypoints[p]) for record in cauchy_set.images
              for p in range(len(record.boxes)) if not record.iscrowd[p] and record.num_keypoints[p] > 0]
    assert len(people) == len(cauchy_set)

    def target(index: int, size: tuple[int, int], read_mask: Any) -> dict[str, Any]:
        return {"box": people[index][1], "keypoints": torch.as_tensor(people[index][2], dtype=torch.float32)}

    def tv_transforms(normalise: bool) -> TorchvisionTopDown:
        return TorchvisionTopDown(cauchy_set.flip_index, seed=0, normalise=normalise)

    def collate(batch: list) -> tuple[torch.Tensor, torch.Tensor]:
        images, keypoints = zip(*batch)
        return default_collate(list(images)), torch.stack(keypoints)

    return {"cauchy": training_loader(cauchy_set, batch_size, collate_fn=Method.collate, num_workers=workers,
                                      persistent_workers=workers > 0),
            **baseline_loaders([path for path, _, _ in people], tv_transforms, target, collate, batch_size, workers)}


def check(batch: dict | tuple) -> int:
    """Crops (uint8, normalised on the device, or normalised float32), and their heatmaps drawn."""
    images, keypoints = (batch["image"], batch["keypoints"][:, 0]) if isinstance(batch, dict) else batch
    heatmaps, weights = gaussian_heatmaps(keypoints, (HEIGHT // STRIDE, WIDTH // STRIDE), STRIDE, SIGMA)
    assert heatmaps.shape[-2:] == (HEIGHT // STRIDE, WIDTH // STRIDE) and 0 < weights.mean() <= 1
    return model_images(images, (HEIGHT, WIDTH))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--size", type=int, default=320, help="largest image side of the sticks")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-") as root:
        prepare_shapes(root, "scripts/pose/sticks/prepare.py", train=args.images, val=0, size=args.size, seed=0)
        loaders = make_loaders(root, args.batch_size, args.workers)
        people = len(loaders["cauchy"].dataset)
        rates, cpu = pipeline_rates(loaders, check, args.rounds)
        del loaders
    print(f"{args.images} sticks JPEGs (<= {args.size} px), {people} people -> person crop {HEIGHT}x{WIDTH} (box x"
          f"{BOX_SCALE}, scale {list(SCALE)}, rotation +-{ROTATION:g} deg) + hflip with pair swap + normalise + "
          f"{HEIGHT // STRIDE}x{WIDTH // STRIDE} heatmaps, batch {args.batch_size}, {args.workers} workers, "
          f"{args.rounds} rounds; rates are people (crops) per second")
    print(json.dumps(summary(rates, "images/s", limit=DECODE_LIMIT, **cpu, images=args.images, people=people,
                             batch_size=args.batch_size, workers=args.workers, rounds=args.rounds)))


if __name__ == "__main__":
    main()
