"""Semantic segmentation layouts, asking the readers' own rules (their split-list and folder names,
the folder pairing, the COCO loader), most explicit first."""
from __future__ import annotations

import os

from cauchy.datasets.seg import coco, mask_folder, voc
from cauchy.datasets.seg.masks import class_list_of
from cauchy.datasets.tools.coco_files import category_names, coco_splits, first_annotation_has
from cauchy.datasets.tools.layout import Layout, Splits, entries, listed_classes, listed_splits, split_params


def _voc_seg_splits(root: str) -> Splits:
    return listed_splits(root, voc.SPLIT_LIST, voc.MASK_DIR)


def _coco_seg_splits(root: str) -> Splits:
    return coco_splits(root, lambda doc: first_annotation_has(doc, "segmentation"))


def _mask_folder_splits(root: str) -> Splits:
    images = os.path.join(root, os.path.dirname(mask_folder.IMAGE_DIR))
    names = []
    for split in (entry.name for entry in entries(images) if entry.is_dir()):
        pairs = mask_folder.folder_pairs(os.path.join(root, mask_folder.IMAGE_DIR.format(split=split)),
                                         os.path.join(root, mask_folder.MASK_DIR.format(split=split)), "", ".png")
        if pairs and os.path.isfile(pairs[0].mask):
            names.append(split)
    return split_params(names)


def _voc_classes(root: str, splits: Splits) -> list[str]:
    return class_list_of(root, None, voc.VOC_CLASSES)[0]


def _coco_seg_classes(root: str, splits: Splits) -> list[str] | None:
    names = category_names(root, splits)
    return None if names is None else [coco.BACKGROUND] + names


SEG_LAYOUTS = [
    Layout("seg", "voc_seg", f"{voc.SPLIT_LIST.format(split='<split>')} with masks in {voc.MASK_DIR}/",
           _voc_seg_splits, _voc_classes, reader=voc.voc_seg),
    Layout("seg", "coco_seg", f"{coco.DEFAULT_ANN_FILE.format(split='<split>')} with segmentation annotations",
           _coco_seg_splits, _coco_seg_classes, reader=coco.coco_seg),
    Layout("seg", "mask_folder", f"{mask_folder.IMAGE_DIR.format(split='<split>')}/<name>.jpg beside "
                                 f"{mask_folder.MASK_DIR.format(split='<split>')}/<name>.png",
           _mask_folder_splits, listed_classes, reader=mask_folder.mask_folder),
]
