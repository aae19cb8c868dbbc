"""COCO keypoints JSON (``root/annotations/person_keypoints_<split>.json``, images under
``root/<split>/``; ``ann_file`` and ``image_dir`` take ``{split}``) as top-down or bottom-up samples.

The keypoint category is the one whose ``keypoints`` list names the joints (``category_id``
chooses among several); its ``skeleton`` (1-based pairs, as COCO writes it) and optional ``sigmas``
(per-keypoint OKS constants, beyond COCO) and ``flip_pairs`` (pairs of joint names, beyond COCO;
else pairs come from the names: ``left_*``/``right_*``) become the dataset's ``metadata``. Every
annotation is checked at construction: keypoints must be 3K finite numbers with visibilities 0, 1 or
2, ``num_keypoints`` must count the labelled ones, ``bbox`` must be [x, y, w, h]; a bad one is a
DatasetError naming the file and the annotation id. See ``cauchy/datasets/pose/__init__.py`` for
the samples.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import drop_bad_images, load_json, read_image, require_file
from cauchy.datasets.pose.skeleton import flip_index, flip_pairs_from_names
from cauchy.registry import DATASETS

Sample = dict[str, Any]
SAMPLE_KINDS = ("person", "image")

log = logging.getLogger("cauchy.datasets.pose")


@dataclass
class PoseImage:
    """One image's people as read: the arrays of ``truth`` (see the package docstring)."""

    path: str
    image_id: int
    keypoints: np.ndarray  # float64 [P, K, 3]
    boxes: np.ndarray  # float64 [P, 4] xyxy
    areas: np.ndarray
    iscrowd: np.ndarray
    num_keypoints: np.ndarray
    head_sizes: np.ndarray

    def truth(self) -> dict[str, Any]:
        return {"keypoints": self.keypoints, "boxes": self.boxes, "areas": self.areas, "iscrowd": self.iscrowd,
                "num_keypoints": self.num_keypoints, "head_sizes": self.head_sizes, "image_id": self.image_id}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def keypoint_category(doc: dict[str, Any], path: str, category_id: int | None) -> dict[str, Any]:
    """The category that names the keypoints (the one ``category_id`` names, else the only such one)."""
    found = [c for c in doc["categories"] if isinstance(c, dict) and isinstance(c.get("keypoints"), list)]
    if category_id is not None:
        found = [c for c in found if c.get("id") == category_id]
    if len(found) != 1:
        what = f"category id {category_id}" if category_id is not None else "one category"
        raise DatasetError(f"{path}: expected {what} with a 'keypoints' list of joint names, found {len(found)}"
                           + ("" if category_id is not None else " (set data.params.category_id)"))
    category = found[0]
    names = category["keypoints"]
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise DatasetError(f"{path}: category {category.get('id')}: 'keypoints' must be distinct joint names, "
                           f"got {names!r}"[:300])
    return category


def skeleton_metadata(category: dict[str, Any], path: str) -> dict[str, Any]:
    """``keypoint_names``, 0-based ``skeleton`` and ``flip_pairs``, ``sigmas`` and ``category_id``."""
    names: list[str] = category["keypoints"]
    k = len(names)
    where = f"{path}: category {category.get('id')}"
    skeleton = category.get("skeleton", [])
    if not isinstance(skeleton, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and 1 <= v <= k for v in p) for p in skeleton):
        raise DatasetError(f"{where}: 'skeleton' must be pairs of 1-based joint indices (1..{k}), got {skeleton!r}"[:300])
    sigmas = category.get("sigmas")
    if sigmas is not None and not (isinstance(sigmas, list) and len(sigmas) == k
                                   and all(_number(s) and s > 0 for s in sigmas)):
        raise DatasetError(f"{where}: 'sigmas' must be {k} positive numbers, got {sigmas!r}"[:300])
    named_pairs = category.get("flip_pairs")
    if named_pairs is None:
        pairs = flip_pairs_from_names(names)
    else:
        if not isinstance(named_pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(n in names for n in p) for p in named_pairs):
            raise DatasetError(f"{where}: 'flip_pairs' must be pairs of joint names from 'keypoints', "
                               f"got {named_pairs!r}"[:300])
        pairs = [(names.index(a), names.index(b)) for a, b in named_pairs]
    return {"keypoint_names": list(names), "skeleton": [[a - 1, b - 1] for a, b in skeleton],
            "flip_pairs": [list(p) for p in pairs], "sigmas": None if sigmas is None else [float(s) for s in sigmas],
            "category_id": int(category["id"])}


def check_annotation(ann: Any, k: int, where: str) -> tuple[np.ndarray, np.ndarray, float, bool, float]:
    """``(keypoints [K, 3], box xyxy, area, iscrowd, head size or NaN)`` of one annotation, checked."""
    if not isinstance(ann, dict):
        raise DatasetError(f"{where}: expected an object, got {ann!r}"[:300])
    flat = ann.get("keypoints")
    if not isinstance(flat, list) or len(flat) != 3 * k or not all(_number(v) for v in flat):
        raise DatasetError(f"{where}: 'keypoints' must be {3 * k} numbers (x, y, v for {k} joints), "
                           f"got {str(flat)[:120]}")
    kps = np.array(flat, dtype=np.float64).reshape(k, 3)
    if not np.isfinite(kps).all():
        raise DatasetError(f"{where}: 'keypoints' has a non-finite value")
    if not np.isin(kps[:, 2], (0, 1, 2)).all():
        raise DatasetError(f"{where}: keypoint visibilities must be 0, 1 or 2, got {sorted(set(kps[:, 2].tolist()))}")
    labelled = int((kps[:, 2] > 0).sum())
    if ann.get("num_keypoints", labelled) != labelled:
        raise DatasetError(f"{where}: 'num_keypoints' is {ann.get('num_keypoints')!r} but {labelled} keypoints "
                           f"are labelled (v > 0)")
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)
            and np.isfinite(bbox).all() and bbox[2] >= 0 and bbox[3] >= 0):
        raise DatasetError(f"{where}: 'bbox' must be [x, y, width, height] with width, height >= 0, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    area = ann.get("area", w * h)
    if not _number(area) or area < 0:
        raise DatasetError(f"{where}: 'area' must be a number >= 0, got {area!r}")
    head = ann.get("head_size")
    if head is not None and not (_number(head) and head > 0):
        raise DatasetError(f"{where}: 'head_size' must be a number > 0, got {head!r}")
    return kps, np.array([x, y, x + w, y + h]), float(area), bool(ann.get("iscrowd", 0)), \
        float("nan") if head is None else float(head)


def read_coco_keypoints(path: str, image_dir: str, category_id: int | None = None
                        ) -> tuple[list[PoseImage], dict[str, Any]]:
    """Every listed image with its people of the keypoint category, and the skeleton metadata."""
    doc = load_json(path)
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "categories")):
        raise DatasetError(f"{path}: expected a COCO object with 'images' and 'categories' lists")
    category = keypoint_category(doc, path, category_id)
    metadata = skeleton_metadata(category, path)
    k = len(metadata["keypoint_names"])
    per_image: dict[Any, list[tuple]] = defaultdict(list)
    for i, ann in enumerate(doc.get("annotations", [])):
        where = f"{path}: annotations[{i}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        if not isinstance(ann, dict) or ann.get("category_id") != category["id"]:
            continue
        per_image[ann.get("image_id")].append(check_annotation(ann, k, where))
    images, listed = [], set()
    for i, entry in enumerate(doc["images"]):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), int) and isinstance(entry.get("file_name"), str)):
            raise DatasetError(f"{path}: images[{i}]: expected 'id' (int) and 'file_name' (str), got {entry!r}"[:300])
        listed.add(entry["id"])
        people = per_image.get(entry["id"], [])
        kps, boxes, areas, crowd, heads = (list(v) for v in zip(*people)) if people else ([], [], [], [], [])
        keypoints = np.array(kps, dtype=np.float64).reshape(-1, k, 3)
        images.append(PoseImage(
            path=os.path.join(image_dir, entry["file_name"]), image_id=entry["id"], keypoints=keypoints,
            boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4), areas=np.array(areas, dtype=np.float64),
            iscrowd=np.array(crowd, dtype=bool), num_keypoints=(keypoints[..., 2] > 0).sum(axis=1),
            head_sizes=np.array(heads, dtype=np.float64)))
    unknown = sorted(str(image_id) for image_id in per_image if image_id not in listed)
    if unknown:
        raise DatasetError(f"{path}: annotations name image ids that 'images' does not list: {', '.join(unknown[:5])}")
    return images, metadata


class PoseDataset(Dataset):
    """Top-down (``samples="person"``) or bottom-up (``samples="image"``) samples over read images."""

    def __init__(self, images: Sequence[PoseImage], metadata: dict[str, Any], source: str, *, samples: str = "person",
                 min_keypoints: int = 1, transforms: Callable[[Sample], Sample] | None = None,
                 skip_bad_images: bool = False) -> None:
        if samples not in SAMPLE_KINDS:
            raise ValueError(f"samples: expected one of {', '.join(SAMPLE_KINDS)}, got {samples!r}")
        self.source, self.samples, self.transforms = source, samples, transforms
        self.metadata = metadata
        self.class_names = list(metadata["keypoint_names"])
        self.flip_index = flip_index(len(self.class_names), metadata["flip_pairs"])
        self.images, self.bad_images = drop_bad_images(list(images), lambda image: image.path, source, skip_bad_images)
        if samples == "person":
            self.items = [(i, p) for i, image in enumerate(self.images) for p in range(len(image.boxes))
                          if not image.iscrowd[p] and image.num_keypoints[p] >= min_keypoints]
        else:
            self.items = [(i, -1) for i in range(len(self.images))]
        if self.bad_images:
            log.warning("%s: skipped %d bad images", source, len(self.bad_images))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        image_index, person = self.items[index]
        record = self.images[image_index]
        image = read_image(record.path)
        people = [person] if person >= 0 else np.flatnonzero(~record.iscrowd)
        sample = {"image": image, "boxes": record.boxes[people].astype(np.float32),
                  "keypoints": record.keypoints[people].astype(np.float32), "flip_index": self.flip_index.copy(),
                  "affine": np.eye(3), "image_id": record.image_id, "path": record.path,
                  "orig_size": image.shape[:2], "truth": record.truth()}
        if person >= 0:
            sample["person"] = person
        return self.transforms(sample) if self.transforms is not None else sample


@DATASETS.register("coco_keypoints")
def coco_keypoints(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None,
                   skip_bad_images: bool = False, class_names: list[str] | None = None, samples: str = "person",
                   min_keypoints: int = 1, category_id: int | None = None,
                   ann_file: str = "annotations/person_keypoints_{split}.json", image_dir: str = "{split}") -> PoseDataset:
    """``class_names`` (the train split's keypoint names, or ``data.class_names``) must equal the file's."""
    path = require_file(os.path.join(root, ann_file.format(split=split)), "COCO keypoints annotation file")
    images, metadata = read_coco_keypoints(path, os.path.join(root, image_dir.format(split=split)), category_id)
    if not images:
        raise DatasetError(f"{path}: lists no images")
    if class_names is not None and list(class_names) != metadata["keypoint_names"]:
        raise DatasetError(f"{path}: its keypoints {metadata['keypoint_names']} differ from the class names "
                           f"{list(class_names)} (of the train split or data.class_names)")
    return PoseDataset(images, metadata, path, samples=samples, min_keypoints=min_keypoints, transforms=transforms,
                       skip_bad_images=skip_bad_images)
