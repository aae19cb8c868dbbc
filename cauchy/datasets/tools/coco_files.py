"""COCO-style annotation files in ``root/annotations/`` (``<prefix><split>.json``, the readers'
default names) and where their images are, for the det, seg and pose layouts."""
from __future__ import annotations

import functools
import glob
import os
from collections.abc import Callable
from typing import Any

from cauchy.datasets.det.coco import load_coco
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.tools.layout import Splits

ANN_DIR = "annotations"
IMAGE_DIRS = ("{split}", "images/{split}", "images", ".")  # where COCO sets keep the images, in order


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, Any] | None:
    try:
        return load_coco(path)
    except DatasetError:
        return None


def load_cached(path: str) -> dict[str, Any] | None:
    """The COCO document (loaded once per file version), None when it is not one."""
    return _load(path, os.path.getmtime(path))


def first_annotation_has(doc: dict[str, Any], key: str) -> bool:
    first = next(iter(doc.get("annotations") or []), None)
    return isinstance(first, dict) and key in first


def image_dir(root: str, split: str, doc: dict[str, Any]) -> str:
    """The first of :data:`IMAGE_DIRS` holding the document's first image (the default when none does)."""
    first = next((entry.get("file_name") for entry in doc["images"] if isinstance(entry, dict)), None)
    for candidate in IMAGE_DIRS:
        if isinstance(first, str) and os.path.isfile(os.path.join(root, candidate.format(split=split), first)):
            return candidate
    return IMAGE_DIRS[0]


def coco_splits(root: str, accept: Callable[[dict[str, Any]], bool], prefix: str = "instances_") -> Splits:
    """Splits of the ``annotations/<prefix><split>.json`` files that load as COCO and ``accept`` takes."""
    splits = {}
    for path in sorted(glob.glob(os.path.join(root, ANN_DIR, f"{prefix}*.json"))):
        doc = load_cached(path)
        if doc is None or not accept(doc):
            continue
        split = os.path.basename(path)[len(prefix):-len(".json")]
        splits[split] = {"split": split, "ann_file": f"{ANN_DIR}/{prefix}{{split}}.json",
                         "image_dir": image_dir(root, split, doc)}
    return splits


def category_names(root: str, splits: Splits) -> list[str] | None:
    """The first split's categories in id order (the COCO reader's class order)."""
    first = next(iter(splits.values()))
    doc = load_cached(os.path.join(root, first["ann_file"].format(split=first["split"])))
    if doc is None:
        return None
    categories = {c.get("id"): c.get("name") for c in doc["categories"] if isinstance(c, dict)}
    return [str(categories[i]) for i in sorted(i for i in categories if isinstance(i, int))]
