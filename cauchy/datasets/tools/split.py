"""A stratified, seeded train/val split for a dataset that came with one split only, written as
files the dataset's own reader reads, so recognition then finds splits ``train`` and ``val``:

- cls: ``train``/``val`` lists in the format's own kind (``.csv``, ``.txt``, ``<split>/label.json``;
  class folders get ``.txt`` lists) and ``classes.txt`` with the class names;
- det/seg VOC: ``ImageSets/{Main,Segmentation}/{train,val}.txt``; YOLO: ``{train,val}.txt`` image lists;
- COCO (det, seg, pose): ``annotations/<prefix>{train,val}.json``, image paths relative to the root.

Strata: the image's class (cls), its rarest class (det, seg) or its number of people (pose), so each
class keeps its share in both parts. A list the single split itself was read from is replaced by
its train part; any other existing file is never overwritten. torchcv_json and mask_folder keep
their splits in folders and are refused.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

from cauchy.datasets.det import voc as det_voc
from cauchy.datasets.det.coco import load_coco
from cauchy.datasets.det.voc import read_split_ids
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.seg import voc as seg_voc
from cauchy.datasets.seg.masks import CLASS_LIST, read_mask
from cauchy.datasets.tools.layout import Recognised
from cauchy.datasets.tools.open_split import open_split
from cauchy.datasets.tools.recognise import recognise

PARTS = ("train", "val")
VOC_LISTS = {"voc": det_voc.SPLIT_LIST, "voc_seg": seg_voc.SPLIT_LIST}


def stratified(keys: Sequence[Hashable], fraction: float, seed: int) -> list[bool]:
    """Which items go to val: ``round(fraction * n)`` of each stratum (at least one of a stratum of
    two or more), chosen by a generator seeded with ``seed``."""
    if not 0 < fraction < 1:
        raise DatasetError(f"the val fraction must be between 0 and 1, got {fraction}")
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    rng = random.Random(seed)
    val = [False] * len(keys)
    for key in sorted(groups, key=repr):
        members = groups[key]
        rng.shuffle(members)
        take = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        for i in members[:take]:
            val[i] = True
    return val


def _rarest(labels_per_item: Sequence[Sequence[int]]) -> list[int]:
    counts = Counter(label for labels in labels_per_item for label in labels)
    return [min(labels, key=lambda label: (counts[label], label)) if len(labels) else -1 for labels in labels_per_item]


def _write_new(root: str, relative: str, text: str, replaceable: set[str]) -> str:
    path = os.path.join(root, relative)
    if os.path.exists(path) and relative not in replaceable:
        raise DatasetError(f"{path}: already exists; a split is written only where none is")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)
    return relative


def _cls_files(root: str, found: Recognised, view: Any, val: list[bool]) -> dict[str, str]:
    rel = [(os.path.relpath(path, root), label) for path, label in view.samples]
    files = {}
    for part in PARTS:
        rows = [row for row, v in zip(rel, val) if v == (part == "val")]
        if found.format == "csv_list":
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows([("path", "label"), *rows])
            files[f"{part}.csv"] = out.getvalue()
        elif found.format == "label_json":
            image_dir = os.path.join(part, "image")
            files[os.path.join(part, "label.json")] = json.dumps(
                [{"image_path": os.path.relpath(path, image_dir), "label": label} for path, label in rows])
        else:
            files[f"{part}.txt"] = "".join(f"{path} {label}\n" for path, label in rows)
    if not os.path.isfile(os.path.join(root, CLASS_LIST)):
        files[CLASS_LIST] = "".join(f"{name}\n" for name in view.class_names)
    return files


def _coco_files(root: str, params: dict[str, Any], val: list[bool]) -> dict[str, str]:
    ann_file = params["ann_file"]
    doc = load_coco(os.path.join(root, ann_file.format(split=params["split"])))
    folder = params["image_dir"].format(split=params["split"])
    images = [dict(entry, file_name=os.path.normpath(os.path.join(folder, entry["file_name"])))
              for entry in doc["images"]]
    files = {}
    for part in PARTS:
        chosen = [entry for entry, v in zip(images, val) if v == (part == "val")]
        ids = {entry["id"] for entry in chosen}
        files[ann_file.format(split=part)] = json.dumps(
            dict(doc, images=chosen, annotations=[a for a in doc.get("annotations") or [] if a.get("image_id") in ids]))
    return files


def _keys(found: Recognised, view: Any) -> list[Hashable]:
    if found.task == "cls":
        return [label for _, label in view.samples]
    if found.task == "det":
        return _rarest([record.labels.tolist() for record in view.records])
    if found.task == "seg":
        return _rarest([sorted(a[1] for a in pair.mask.annotations) if not isinstance(pair.mask, str) else
                        [int(v) for v in set(read_mask(pair.mask)[0].ravel().tolist()) if v != view.ignore_index]
                        for pair in view.pairs])
    return [min(len(anns), 3) for _, anns, _ in view.items]


def make_split(root: str, fraction: float = 0.2, seed: int = 0, task: str | None = None,
               fmt: str | None = None) -> list[str]:
    """Writes the split (see the module docstring); returns the files written, relative to ``root``."""
    found = recognise(root, task, fmt)
    if len(found.splits) != 1:
        raise DatasetError(f"{root}: already has the splits {sorted(found.splits)}; a split is made only for one")
    if found.format in ("torchcv_json", "mask_folder"):
        raise DatasetError(f"{root}: {found.format} keeps its splits in folders; move a share of the files into a "
                           f"second split folder instead")
    (split, params), = found.splits.items()
    view = open_split(found, root, params)
    val = stratified(_keys(found, view), fraction, seed)
    if found.task == "cls":
        files = _cls_files(root, found, view, val)
    elif found.format in ("voc", "voc_seg"):
        ids = read_split_ids(os.path.join(root, VOC_LISTS[found.format].format(split=split)))
        files = {VOC_LISTS[found.format].format(split=part): "".join(
            f"{name}\n" for name, v in zip(ids, val) if v == (part == "val")) for part in PARTS}
    elif found.format == "yolo":
        files = {f"{part}.txt": "".join(f"{os.path.relpath(record.path, root)}\n" for record, v in zip(view.records, val)
                                        if v == (part == "val")) for part in PARTS}
    else:
        files = _coco_files(root, params, val)
    replaceable = {name for name in files if split in PARTS and split in re.split(r"[/._]", name)}
    return [_write_new(root, name, text, replaceable) for name, text in files.items()]
