"""Tiny published models of every exportable kind, as the weights host holds them: a weights file (the
model's state dict) and the run directory it came from (``hypes.json`` and a checkpoint with the class
names and metadata), built from the repository's own hypes with freshly initialised small models, and a
few images to predict on. A plain module (not a conftest) so every test module here imports it."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cauchy import rundir

REPO = Path(__file__).resolve().parents[2]
KEYPOINTS = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
# task -> (hypes file, overrides, class names, checkpoint metadata, image (h, w), the model's output layers)
CASES: dict[str, tuple[str, list[str], list[str], dict[str, Any], tuple[int, int], tuple[str, ...]]] = {
    "cls": ("hypes/cls/image_classifier_smallcnn_digits.json", [], [str(i) for i in range(10)], {}, (8, 8),
            ("classifier.1",)),
    "det": ("hypes/det/yolov3_small_shapes.json", ["res.score_thresh=0.5"], ["circle", "square", "triangle"], {},
            (72, 96), ("heads.0.1", "heads.1.1", "heads.2.1")),
    "seg": ("hypes/seg/tiny_unet_shapes.json", [], ["background", "circle", "square"], {}, (48, 64), ("classifier",)),
    "pose": ("hypes/pose/simple_baseline_small_sticks.json", [], KEYPOINTS,
             {"keypoint_names": KEYPOINTS, "skeleton": [[0, 1], [0, 2], [0, 3], [0, 4]], "flip_pairs": [[1, 2], [3, 4]]},
             (80, 60), ("final",)),
}


@dataclass
class Tiny:
    task: str
    name: str
    weights: Path  # the published state dict
    run_dir: Path  # the source job's run directory
    images: Path  # a folder of images to predict on


def publish_tiny(root: Path, task: str, seed: int = 0) -> Tiny:
    """Build ``task``'s small model (seeded), save it as a job would and publish its weights under ``root``."""
    import torch

    from cauchy.build import build_method, without_pretrained
    from cauchy.hypes import load_hypes, resolve_hypes, save_hypes

    path, overrides, names, metadata, (h, w), output_layers = CASES[task]
    # The predict phase runs in the test process, on the CPU as the edge predictor does.
    hypes = resolve_hypes(load_hypes(str(REPO / path)), ["data.workers=0", "details.device=cpu", *overrides])
    torch.manual_seed(seed)
    method = build_method(without_pretrained(hypes), len(names))
    with torch.no_grad():
        for name, module in method.model.named_modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # statistics an export must not drop
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
            if name in output_layers:  # rows of mean 0, larger: answers that vary over the image, not one class
                weight = module.weight
                weight.sub_(weight.mean(dim=tuple(range(1, weight.ndim)), keepdim=True)).mul_(20)
                module.bias.zero_()
    state = method.model.state_dict()
    run_dir = root / f"job_{task}"
    (run_dir / rundir.CHECKPOINTS).mkdir(parents=True)
    save_hypes(hypes, str(run_dir / rundir.HYPES))
    torch.save({"model": state, "hypes": hypes, "class_names": names, "metadata": metadata},
               run_dir / rundir.BEST_CHECKPOINT)
    weights = root / f"tiny_{task}.pth"
    torch.save(state, weights)
    return Tiny(task, f"tiny_{task}", weights, run_dir, write_images(root / f"images_{task}", h, w, seed))


def write_images(folder: Path, h: int, w: int, seed: int, count: int = 3) -> Path:
    """``count`` PNGs of coloured shapes on a noisy background, all ``h`` x ``w`` (a batch needs no padding)."""
    folder.mkdir(parents=True)
    gen = np.random.default_rng(seed)
    for i in range(count):
        image = gen.integers(0, 80, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            x, y = int(gen.integers(0, w)), int(gen.integers(0, h))
            colour = tuple(int(c) for c in gen.integers(100, 256, 3))
            cv2.circle(image, (x, y), int(gen.integers(2, max(3, min(h, w) // 3))), colour, -1)
        cv2.imwrite(str(folder / f"img{i}.png"), image)
    return folder


def read_predictions(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """predictions.json as {file name: prediction}."""
    with open(path, encoding="utf-8") as fh:
        return {os.path.basename(p["path"]): p for p in json.load(fh)["predictions"]}
