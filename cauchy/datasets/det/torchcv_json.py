"""The legacy torchcv layout: ``root/<split>/json/<name>.json`` =
``{"width", "height", "objects": [{"bbox": [x1, y1, x2, y2], "label"}]}`` with the image
``root/<split>/image/<name>.<ext>``.

``label`` is a class index (torchcv's) or a class name; objects may carry ``difficult`` and
``iscrowd``. With indices and no ``class_names``, classes are named ``"0"`` .. the highest index.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from cauchy.datasets.det.base import DetDataset, RawImage, Sample
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import is_image_file, load_json
from cauchy.registry import DATASETS


def _label_name(label: Any, class_names: list[str] | None, where: str) -> str:
    if isinstance(label, str):
        return label
    if isinstance(label, int) and not isinstance(label, bool) and label >= 0:
        if class_names is None:
            return str(label)
        if label < len(class_names):
            return class_names[label]
        return f"#{label}"  # reported as an unknown class by the box checks
    raise DatasetError(f"{where}: label must be a class index >= 0 or a class name, got {label!r}")


def read_torchcv_json(path: str, image_path: str, image_id: int, class_names: list[str] | None) -> RawImage:
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("objects", []), list):
        raise DatasetError(f"{path}: expected {{\"width\", \"height\", \"objects\": [...]}}")
    names, boxes, difficult, iscrowd = [], [], [], []
    for i, obj in enumerate(doc.get("objects", [])):
        where = f"{path}: objects[{i}]"
        bbox = obj.get("bbox") if isinstance(obj, dict) else None
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise DatasetError(f"{where}: bbox must be [x1, y1, x2, y2], got {bbox!r}")
        names.append(_label_name(obj.get("label"), class_names, where))
        boxes.append(bbox)
        difficult.append(bool(obj.get("difficult", False)))
        iscrowd.append(bool(obj.get("iscrowd", False)))
    width, height = doc.get("width"), doc.get("height")
    size = (height, width) if isinstance(width, int) and isinstance(height, int) else None
    return RawImage(path=image_path, source=path, names=names, boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
                    image_id=image_id, size=size, difficult=np.array(difficult, dtype=bool),
                    iscrowd=np.array(iscrowd, dtype=bool))


@DATASETS.register("torchcv_json")
def torchcv_json(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None,
                 skip_bad_images: bool = False, class_names: list[str] | None = None,
                 skip_bad_boxes: bool = False) -> DetDataset:
    json_dir, image_dir = os.path.join(root, split, "json"), os.path.join(root, split, "image")
    for folder in (json_dir, image_dir):
        if not os.path.isdir(folder):
            raise DatasetError(f"{folder}: folder not found (expected {root}/{split}/json and {root}/{split}/image)")
    images_by_stem = {os.path.splitext(n)[0]: n for n in sorted(os.listdir(image_dir)) if is_image_file(n)}
    images = []
    for name in sorted(n for n in os.listdir(json_dir) if n.endswith(".json")):
        stem = os.path.splitext(name)[0]
        if stem not in images_by_stem:
            raise DatasetError(f"{os.path.join(json_dir, name)}: no image named {stem}.* in {image_dir}")
        images.append(read_torchcv_json(os.path.join(json_dir, name), os.path.join(image_dir, images_by_stem[stem]),
                                        len(images), class_names))
    if not images:
        raise DatasetError(f"{json_dir}: no .json annotation files")
    if class_names is None and all(n.isdigit() for image in images for n in image.names):
        class_names = [str(i) for i in range(1 + max((int(n) for image in images for n in image.names), default=0))]
    return DetDataset(images, json_dir, class_names=class_names, transforms=transforms,
                      skip_bad_images=skip_bad_images, skip_bad_boxes=skip_bad_boxes)
