"""COCO instances rasterised for semantic models: each image's label map is drawn from its
annotations (polygons, RLE or uncompressed RLE, through pycocotools), larger instances first so
smaller ones stay visible; crowd regions become the ignore value. Paths as the detection reader
(``ann_file``, ``image_dir``, both taking ``{split}``). Classes: ``background`` (0), then the
categories in id order (or ``class_names``, ``background`` first, by name)."""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from cauchy.datasets import rle
from cauchy.datasets.det.coco import load_coco
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import require_file
from cauchy.datasets.seg.base import Pair, Sample, SegDataset
from cauchy.registry import DATASETS

BACKGROUND = "background"
DEFAULT_ANN_FILE = "annotations/instances_{split}.json"


class CocoRaster:
    """Draws one image's label map (a picklable callable, so DataLoader workers can run it)."""

    def __init__(self, annotations: list[tuple[Any, int, bool, str]], ignore_index: int) -> None:
        self.annotations = annotations  # (segmentation, class index, iscrowd, where)
        self.ignore_index = ignore_index

    def __call__(self, height: int, width: int) -> np.ndarray:
        labels = np.zeros((height, width), dtype=np.uint8 if self.ignore_index < 256 else np.int32)
        drawn = []
        for segmentation, index, crowd, where in self.annotations:
            mask = mask_utils.decode(rle.from_segmentation(segmentation, height, width, where)).astype(bool)
            drawn.append((mask.sum(), mask, self.ignore_index if crowd else index))
        for _, mask, value in sorted(drawn, key=lambda item: -item[0]):
            labels[mask] = value
        return labels


@DATASETS.register("coco_seg")
def coco_seg(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None,
             skip_bad_images: bool = False, class_names: list[str] | None = None, skip_bad_masks: bool = False,
             ignore_index: int = 255, ann_file: str = DEFAULT_ANN_FILE,
             image_dir: str = "{split}") -> SegDataset:
    path = require_file(os.path.join(root, ann_file.format(split=split)), "COCO annotation file")
    doc = load_coco(path)
    categories = {c.get("id"): c.get("name") for c in doc["categories"] if isinstance(c, dict)}
    names = list(class_names) if class_names is not None else [BACKGROUND] + [categories[i] for i in sorted(categories)]
    if names[0] != BACKGROUND:
        raise DatasetError(f"{path}: class 0 must be {BACKGROUND!r} for rasterised COCO, got {names[0]!r}")
    index = {name: i for i, name in enumerate(names)}
    per_image: dict[Any, list[tuple[Any, int, bool, str]]] = defaultdict(list)
    for i, ann in enumerate(doc.get("annotations", [])):
        where = f"{path}: annotations[{i}]"
        name = categories.get(ann.get("category_id")) if isinstance(ann, dict) else None
        if name is None or name not in index:
            raise DatasetError(f"{where}: category_id {ann.get('category_id') if isinstance(ann, dict) else ann!r} "
                               f"is not one of the classes {names[1:]}")
        per_image[ann.get("image_id")].append((ann.get("segmentation"), index[name], bool(ann.get("iscrowd", 0)), where))
    image_root = os.path.join(root, image_dir.format(split=split))
    pairs = []
    for i, entry in enumerate(doc["images"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise DatasetError(f"{path}: images[{i}]: expected an object with a file_name")
        pairs.append(Pair(os.path.join(image_root, entry["file_name"]),
                          CocoRaster(per_image.get(entry.get("id"), []), ignore_index), f"{path} (image id {entry.get('id')})"))
    return SegDataset(pairs, path, names, list(range(len(names))), ignore_index=ignore_index, transforms=transforms,
                      skip_bad_images=skip_bad_images, skip_bad_masks=skip_bad_masks)
