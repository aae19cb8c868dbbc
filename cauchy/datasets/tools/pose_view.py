"""COCO keypoints read for validation and statistics (torch-free): each image's people as
``keypoints`` [N, K, 3] (x, y, visibility 0 absent / 1 occluded / 2 visible) and ``boxes`` [N, 4]
xyxy; a point labelled outside its image, or a visibility other than 0/1/2, is an error naming the
annotation. The training reader is the pose task's own; this view asks only what the file says."""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import numpy as np

from cauchy.datasets.det.coco import load_coco
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import read_image, require_file
from cauchy.datasets.tools.detect_pose import has_keypoint_categories


class CocoKeypointsView:
    """A map-style view of one split's keypoint annotations (``split``, ``ann_file``, ``image_dir``
    as :func:`cauchy.datasets.tools.recognise.recognise` gives them)."""

    def __init__(self, root: str, split: str, ann_file: str, image_dir: str) -> None:
        path = require_file(os.path.join(root, ann_file.format(split=split)), "COCO keypoints file")
        doc = load_coco(path)
        if not has_keypoint_categories(doc):
            raise DatasetError(f"{path}: no category lists 'keypoints'")
        categories = [c for c in doc["categories"] if isinstance(c, dict) and c.get("keypoints")]
        self.class_names = [str(c.get("name")) for c in categories]
        self.keypoint_names = [str(name) for name in categories[0]["keypoints"]]
        self.skeleton = [pair for pair in categories[0].get("skeleton") or [] if isinstance(pair, list) and len(pair) == 2]
        per_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for ann in doc.get("annotations") or []:
            if isinstance(ann, dict):
                per_image[ann.get("image_id")].append(ann)
        folder = os.path.join(root, image_dir.format(split=split))
        self.items = [(os.path.join(folder, str(entry.get("file_name"))), per_image.get(entry.get("id"), []),
                       f"{path} (image id {entry.get('id')})") for entry in doc["images"] if isinstance(entry, dict)]
        if not self.items:
            raise DatasetError(f"{path}: lists no images")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, anns, source = self.items[index]
        image = read_image(path)
        height, width = image.shape[:2]
        k = len(self.keypoint_names)
        points, boxes = [], []
        for ann in anns:
            values = ann.get("keypoints")
            if not isinstance(values, list) or len(values) != 3 * k:
                raise DatasetError(f"{source}: annotation id {ann.get('id')} has {len(values or [])} keypoint "
                                   f"values, expected {3 * k} (x, y, v for each of {k} joints)")
            person = np.asarray(values, dtype=np.float64).reshape(k, 3)
            if not np.isin(person[:, 2], (0, 1, 2)).all():
                raise DatasetError(f"{source}: annotation id {ann.get('id')}: visibility must be 0, 1 or 2")
            labelled = person[person[:, 2] > 0]
            if ((labelled[:, 0] < 0) | (labelled[:, 0] > width) | (labelled[:, 1] < 0) | (labelled[:, 1] > height)).any():
                raise DatasetError(f"{source}: annotation id {ann.get('id')} has a keypoint outside the "
                                   f"{width}x{height} image")
            points.append(person)
            x, y, w, h = (ann.get("bbox") or [0, 0, 0, 0])[:4]
            boxes.append([x, y, x + w, y + h])
        return {"image": image, "path": path, "keypoints": np.array(points).reshape(-1, k, 3),
                "boxes": np.array(boxes, dtype=np.float64).reshape(-1, 4)}
