"""The torchcv layout: ``root/<split>/label.json`` = ``[{"image_path", "label"}, ...]`` with
``image_path`` relative to ``root/<split>/image/``."""
from __future__ import annotations

import json
import os
from collections.abc import Callable

from cauchy.datasets.cls.base import ClsDataset, Sample, indexed_dataset, parse_label
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import load_json, require_file
from cauchy.registry import DATASETS


def read_label_json(list_path: str, image_dir: str) -> list[tuple[str, int]]:
    entries = load_json(list_path)
    if not isinstance(entries, list):
        raise DatasetError(f"{list_path}: expected a list of {{image_path, label}} objects")
    samples = []
    for i, entry in enumerate(entries):
        where = f"{list_path}: entry {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("image_path"), str) or "label" not in entry:
            raise DatasetError(f"{where}: expected {{\"image_path\": str, \"label\": int}}, got {entry!r}")
        samples.append((os.path.join(image_dir, entry["image_path"]),
                        parse_label(entry["label"], where, json.dumps(entry))))
    return samples


@DATASETS.register("label_json")
def label_json(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None,
               skip_bad_images: bool = False, class_names: list[str] | None = None) -> ClsDataset:
    list_path = require_file(os.path.join(root, split, "label.json"), "label file")
    samples = read_label_json(list_path, os.path.join(root, split, "image"))
    return indexed_dataset(samples, list_path, transforms, skip_bad_images, class_names, root)
