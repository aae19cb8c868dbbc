"""The dataset's statistics (``stats.json``) from the facts of every image, shaped for plotting:
each histogram is ``{"edges": [...], "counts": [...]}`` (``len(edges) == len(counts) + 1``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cauchy.datasets.tools.item_facts import ItemFacts

ASPECT_EDGES = [0.0, 0.5, 0.67, 0.8, 0.95, 1.05, 1.25, 1.5, 2.0, 100.0]  # width / height
BOX_SIDE_EDGES = [0, 8, 16, 32, 64, 96, 128, 256, 512, 100000]  # sqrt(box area), pixels
COCO_SMALL, COCO_MEDIUM = 32 ** 2, 96 ** 2  # COCO's area ranges
MAX_POINTS = 2000  # image sizes kept for the scatter plot


def histogram(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> dict[str, list]:
    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=np.asarray(edges, dtype=np.float64))
    return {"edges": list(edges), "counts": counts.tolist()}


def _global_labels(facts: ItemFacts, split_names: Mapping[str, Sequence[str]], index: Mapping[str, int]) -> list[int]:
    names = split_names[facts.split]
    return [index[names[label]] for label in facts.labels]


def statistics(task: str, facts: Sequence[ItemFacts], class_names: Sequence[str],
               split_names: Mapping[str, Sequence[str]], keypoint_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Images per split and class, the class histogram, image sizes and aspect ratios, and per task:
    boxes per image and box sizes (det, pose), mask pixel share (seg), keypoint visibility (pose)."""
    index = {name: i for i, name in enumerate(class_names)}
    good = [f for f in facts if f.problem is None]
    n = len(class_names)
    splits: dict[str, dict[str, Any]] = {}
    instances: list[int] = []
    for split in dict.fromkeys(f.split for f in facts):
        in_split = [f for f in facts if f.split == split]
        labels = [_global_labels(f, split_names, index) for f in in_split if f.problem is None]
        instances += [label for image in labels for label in image]
        splits[split] = {"images": len(labels), "bad_images": len(in_split) - len(labels),
                         "per_class": np.bincount([label for image in labels for label in set(image)],
                                                  minlength=n).tolist()}
    sizes = np.array([[f.width, f.height] for f in good], dtype=np.float64).reshape(-1, 2)
    keep = np.linspace(0, len(sizes) - 1, min(len(sizes), MAX_POINTS)).astype(int) if len(sizes) else []
    stats: dict[str, Any] = {
        "task": task, "class_names": list(class_names), "splits": splits,
        "class_histogram": np.bincount(instances, minlength=n).tolist(),
        "image_sizes": {"points": sizes[keep].astype(int).tolist(),
                        "width": _summary(sizes[:, 0]), "height": _summary(sizes[:, 1])},
        "aspect_ratios": histogram(sizes[:, 0] / np.maximum(sizes[:, 1], 1), ASPECT_EDGES),
    }
    if task in ("det", "pose"):
        per_image = [len(f.labels) for f in good]
        top = max(per_image, default=0)
        stats["boxes_per_image"] = histogram(per_image, list(range(top + 2)))
        wh = np.concatenate([f.box_sizes for f in good if f.box_sizes is not None] or [np.zeros((0, 2))])
        areas = np.concatenate([f.areas if f.areas is not None else f.box_sizes.prod(axis=1)
                                for f in good if f.box_sizes is not None] or [np.zeros(0)])
        stats["box_sizes"] = {"small": int((areas < COCO_SMALL).sum()),
                              "medium": int(((areas >= COCO_SMALL) & (areas < COCO_MEDIUM)).sum()),
                              "large": int((areas >= COCO_MEDIUM).sum()),
                              "side": histogram(np.sqrt(wh.prod(axis=1)), BOX_SIDE_EDGES)}
    if task == "seg":
        pixels = np.zeros(n, dtype=np.int64)
        for split, names in split_names.items():
            counted = [f.pixels for f in good if f.split == split]
            if counted:
                pixels[[index[name] for name in names]] += np.sum(counted, axis=0)
        total = int(pixels.sum())
        stats["mask_pixel_share"] = (pixels / max(total, 1)).round(6).tolist()
    if task == "pose" and keypoint_names:
        counts = sum((f.visibility for f in good if f.visibility is not None), np.zeros((len(keypoint_names), 3), int))
        stats["keypoint_visibility"] = {"joints": list(keypoint_names), "absent": counts[:, 0].tolist(),
                                        "occluded": counts[:, 1].tolist(), "visible": counts[:, 2].tolist()}
    return stats


def _summary(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"min": 0, "median": 0, "max": 0}
    return {"min": float(values.min()), "median": float(np.median(values)), "max": float(values.max())}
