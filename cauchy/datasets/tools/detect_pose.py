"""Pose layouts: COCO keypoints (``annotations/person_keypoints_<split>.json`` whose categories name
their ``keypoints``), recognised by the file's shape alone so the service needs no pose reader."""
from __future__ import annotations

import os
from typing import Any

from cauchy.datasets.tools.coco_files import category_names, coco_splits, load_cached
from cauchy.datasets.tools.layout import Layout, Splits

KEYPOINTS_PREFIX = "person_keypoints_"


def has_keypoint_categories(doc: dict[str, Any]) -> bool:
    return any(isinstance(c, dict) and isinstance(c.get("keypoints"), list) and c["keypoints"]
               for c in doc["categories"])


def _coco_keypoints_splits(root: str) -> Splits:
    return coco_splits(root, has_keypoint_categories, KEYPOINTS_PREFIX)


def keypoint_names(root: str, splits: Splits) -> list[str] | None:
    """The first keypoint category's joint names."""
    first = next(iter(splits.values()))
    doc = load_cached(os.path.join(root, first["ann_file"].format(split=first["split"])))
    category = next((c for c in doc["categories"] if isinstance(c, dict) and c.get("keypoints")), None) if doc else None
    return [str(name) for name in category["keypoints"]] if category else None


POSE_LAYOUTS = [
    Layout("pose", "coco_keypoints", f"annotations/{KEYPOINTS_PREFIX}<split>.json whose categories list 'keypoints'",
           _coco_keypoints_splits, category_names),
]
