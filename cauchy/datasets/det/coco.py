"""COCO instances JSON: ``root/annotations/instances_<split>.json`` with images under
``root/<split>/`` (both paths overridable: ``ann_file`` and ``image_dir`` take ``{split}``).

Category ids need not be contiguous: classes are the categories sorted by id, and the dataset's
``metadata["category_ids"]`` maps class indices back to ids for COCO-format results. Crowd
annotations are kept with ``iscrowd`` set: the COCO metric ignores what they cover and the
detection methods leave them out of training.

With ``masks=True`` (``data.params``, for instance segmentation) each annotation's
``segmentation`` (polygons or RLE) is read too, checked and kept as a compressed RLE; samples then
carry ``masks`` [N,H,W] (and their ground truth the original RLEs, for the mask evaluator).
"""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from cauchy.datasets import rle
from cauchy.datasets.det.base import DetDataset, RawImage, Sample
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import load_json, require_file
from cauchy.datasets.rle import RLE
from cauchy.registry import DATASETS


def _field(entry: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(entry, dict) or not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
        raise DatasetError(f"{where}: expected key {key!r} of type {getattr(kind, '__name__', kind)}, got {entry!r}"[:300])
    return entry[key]


def load_coco(path: str) -> dict[str, Any]:
    doc = load_json(path)
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "categories")):
        raise DatasetError(f"{path}: expected a COCO object with 'images' and 'categories' lists")
    return doc


def annotation_areas(anns: list[dict[str, Any]]) -> np.ndarray | None:
    """The annotations' own ``area`` (COCO's: the object's, used for its small/medium/large ranges),
    or None when any lacks one (then box areas are used)."""
    areas = [a.get("area") for a in anns]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in areas):
        return None
    return np.array(areas, dtype=np.float64)


def read_masks(anns: list[dict[str, Any]], entry: dict[str, Any], where: str) -> list[RLE]:
    """The annotations' segmentations as compressed RLEs of the image's size."""
    height, width = entry.get("height"), entry.get("width")
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise DatasetError(f"{where}: 'height' and 'width' are needed to read its masks, got {entry!r}"[:300])
    return [rle.from_segmentation(a.get("segmentation"), height, width, f"{where}, annotation id {a.get('id')}")
            for a in anns]


def read_coco(path: str, image_dir: str, masks: bool = False) -> tuple[list[RawImage], dict[int, str], list[str]]:
    """Images with their boxes (xywh -> xyxy) and optionally masks, the ``{category id: name}`` table,
    and a description of each annotation whose ``image_id`` names no listed image (left out, to be
    counted and reported)."""
    doc = load_coco(path)
    categories = {_field(c, "id", int, f"{path}: categories[{i}]"): _field(c, "name", str, f"{path}: categories[{i}]")
                  for i, c in enumerate(doc["categories"])}
    per_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, ann in enumerate(doc.get("annotations", [])):
        where = f"{path}: annotations[{i}]"
        per_image[_field(ann, "image_id", int, where)].append(ann)
        if _field(ann, "category_id", int, where) not in categories:
            raise DatasetError(f"{where}: category_id {ann['category_id']} is not in 'categories'")
        bbox = _field(ann, "bbox", list, where)
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise DatasetError(f"{where}: bbox must be [x, y, width, height], got {bbox}")
    images, listed = [], set()
    for i, entry in enumerate(doc["images"]):
        where = f"{path}: images[{i}]"
        image_id = _field(entry, "id", int, where)
        listed.add(image_id)
        anns = per_image.get(image_id, [])
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        size = (entry["height"], entry["width"]) if isinstance(entry.get("height"), int) and isinstance(
            entry.get("width"), int) else None
        rles = read_masks(anns, entry, where) if masks else None
        images.append(RawImage(
            path=os.path.join(image_dir, _field(entry, "file_name", str, where)), source=f"{path} (image id {image_id})",
            names=[categories[a["category_id"]] for a in anns],
            boxes=np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1), image_id=image_id, size=size,
            iscrowd=np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool), areas=annotation_areas(anns),
            masks=rles))
    unmatched = [f"{path}: annotation id {a.get('id')} has image_id {image_id}, which 'images' does not list"
                 for image_id, anns in per_image.items() if image_id not in listed for a in anns]
    return images, categories, unmatched


@DATASETS.register("coco")
def coco(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None, skip_bad_images: bool = False,
         class_names: list[str] | None = None, skip_bad_boxes: bool = False,
         ann_file: str = "annotations/instances_{split}.json", image_dir: str = "{split}",
         masks: bool = False) -> DetDataset:
    """Classes are the file's categories in id order unless ``class_names`` fixes them (by name)."""
    path = require_file(os.path.join(root, ann_file.format(split=split)), "COCO annotation file")
    images, categories, unmatched = read_coco(path, os.path.join(root, image_dir.format(split=split)), masks)
    if not images:
        raise DatasetError(f"{path}: lists no images")
    by_id = sorted(categories)
    names = class_names if class_names is not None else [categories[i] for i in by_id]
    ids_by_name = {categories[i]: i for i in by_id}
    metadata = {"category_ids": [ids_by_name[n] for n in names]} if all(n in ids_by_name for n in names) else {}
    return DetDataset(images, path, class_names=names, transforms=transforms, skip_bad_images=skip_bad_images,
                      skip_bad_boxes=skip_bad_boxes, metadata=metadata, unmatched_annotations=unmatched)
