"""What validation learns from one image, in a worker process: whether the reader's sample loads
(the image decodes, its masks and annotations pass the reader's checks) and the figures the
statistics need. Only these small records travel back to the main process."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ItemFacts:
    """One image: ``labels`` are class indices of the split's reader (cls: the image's class; det: one
    per box; seg: the classes with pixels; pose: one per person); ``problem`` when it failed to load."""

    split: str
    index: int
    path: str
    problem: str | None = None
    height: int = 0
    width: int = 0
    labels: list[int] = field(default_factory=list)
    box_sizes: np.ndarray | None = None  # [N, 2] width, height in pixels (det, pose)
    areas: np.ndarray | None = None  # [N] the annotations' areas (det: COCO's own where the file has one)
    pixels: np.ndarray | None = None  # [C] labelled pixels per class (seg)
    visibility: np.ndarray | None = None  # [K, 3] joints counted by visibility 0, 1, 2 (pose)


def _box_sizes(boxes: Any) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes[:, 2:] - boxes[:, :2]


def facts_of(task: str, sample: dict[str, Any], split: str, index: int, num_classes: int) -> ItemFacts:
    """The facts of a loaded reader sample (before any transform)."""
    height, width = sample["image"].shape[:2]
    facts = ItemFacts(split, index, sample["path"], height=height, width=width)
    if task == "cls":
        facts.labels = [int(sample["label"])]
    elif task == "det":
        facts.labels = sample["labels"].tolist()
        facts.box_sizes = _box_sizes(sample["boxes"])
        facts.areas = np.asarray(sample["truth"]["areas"], dtype=np.float64)
    elif task == "seg":
        facts.pixels = np.bincount(sample["mask"].ravel(), minlength=num_classes)[:num_classes]
        facts.labels = np.flatnonzero(facts.pixels).tolist()
    else:
        keypoints = sample["keypoints"]
        facts.labels = [0] * len(keypoints)
        facts.box_sizes = _box_sizes(sample["boxes"])
        facts.visibility = np.stack([(keypoints[:, :, 2] == v).sum(axis=0) for v in (0, 1, 2)], axis=1)
    return facts
