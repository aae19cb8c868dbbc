"""Detection layouts, asking the readers' own rules (file and folder names, the COCO loader), most
explicit first."""
from __future__ import annotations

import os

from cauchy.datasets.det import coco, torchcv_json, voc, yolo
from cauchy.datasets.tools.coco_files import category_names, coco_splits, first_annotation_has
from cauchy.datasets.tools.layout import Layout, Splits, entries, listed_splits, split_params


def _voc_splits(root: str) -> Splits:
    return listed_splits(root, voc.SPLIT_LIST, voc.ANNOTATION_DIR)


def _coco_splits(root: str) -> Splits:
    return coco_splits(root, lambda doc: first_annotation_has(doc, "bbox"))


def _torchcv_json_splits(root: str) -> Splits:
    return split_params([e.name for e in entries(root) if e.is_dir() and os.path.isdir(os.path.join(e.path, "json"))
                         and os.path.isdir(os.path.join(e.path, "image"))])


def _yolo_splits(root: str) -> Splits:
    """Splits whose first image has its label file where YOLO's rule puts it."""
    candidates = {e.name for e in entries(os.path.join(root, yolo.IMAGE_DIR)) if e.is_dir()}
    candidates |= {e.name[:-len(".txt")] for e in entries(root) if e.is_file() and e.name.endswith(".txt")}
    names = []
    for split in sorted(candidates):
        try:
            first = yolo.split_images(root, split)[:1]
        except (OSError, UnicodeDecodeError):
            continue
        if first and os.path.isfile(yolo.label_path(first[0])) and os.path.isfile(first[0]):
            names.append(split)
    return split_params(names)


def _yolo_classes(root: str, splits: Splits) -> list[str] | None:
    return yolo.yolo_class_names(root)


DET_LAYOUTS = [
    Layout("det", "voc", f"{voc.SPLIT_LIST.format(split='<split>')} listing ids, {voc.ANNOTATION_DIR}/<id>.xml",
           _voc_splits, reader=voc.voc),  # object names are inside each annotation file: validation collects them
    Layout("det", "coco", "annotations/instances_<split>.json with bbox annotations", _coco_splits, category_names,
           reader=coco.coco),
    Layout("det", "torchcv_json", "<split>/json/<name>.json beside <split>/image/<name>.jpg", _torchcv_json_splits,
           reader=torchcv_json.torchcv_json),
    Layout("det", "yolo", f"{yolo.IMAGE_DIR}/<split>/<name>.jpg (or a <split>.txt list of images) beside "
                          f"{yolo.LABEL_DIR}/<split>/<name>.txt of 'class cx cy w h' lines", _yolo_splits,
           _yolo_classes, reader=yolo.yolo),
]
