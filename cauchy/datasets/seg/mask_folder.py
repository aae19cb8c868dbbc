"""Image and mask folder pairs, as ADE20K and Cityscapes-style sets ship: images under
``root/<image_dir>`` and single-channel label maps under ``root/<mask_dir>`` at the same relative
path, the image's suffix replaced by ``mask_suffix`` (both folders take ``{split}``). Cityscapes:
``image_dir="leftImg8bit/{split}"``, ``image_suffix="_leftImg8bit.png"``, ``mask_dir="gtFine/{split}"``,
``mask_suffix="_gtFine_labelIds.png"`` with an ``id name`` class list. Classes come from
``root/classes.txt`` (see ``cauchy.datasets.seg.masks``) or ``data.class_names``; ``label_ids`` gives
the raw mask value of each class in order (torchcv's ``label_list``: Cityscapes' 19 training ids among
its 34 label ids), the other values then being unknown unless they are the ignore value."""
from __future__ import annotations

import os
from collections.abc import Callable

from cauchy.datasets.cls.image_folder import images_under
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.seg.base import Pair, Sample, SegDataset
from cauchy.datasets.seg.masks import class_list_of
from cauchy.registry import DATASETS

IMAGE_DIR, MASK_DIR = "images/{split}", "annotations/{split}"


def folder_pairs(image_root: str, mask_root: str, image_suffix: str, mask_suffix: str) -> list[Pair]:
    """Every image under ``image_root`` (ending in ``image_suffix``, or any image extension when it is
    empty) with the mask path it maps to; the mask need not exist yet (the dataset checks)."""
    pairs = []
    for path in images_under(image_root):
        if not path.endswith(image_suffix):
            continue
        rel = os.path.relpath(path, image_root)
        stem = rel[:-len(image_suffix)] if image_suffix else os.path.splitext(rel)[0]
        mask = os.path.join(mask_root, stem + mask_suffix)
        pairs.append(Pair(path, mask, mask))
    return pairs


@DATASETS.register("mask_folder")
def mask_folder(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None,
                skip_bad_images: bool = False, class_names: list[str] | None = None, skip_bad_masks: bool = False,
                ignore_index: int = 255, image_dir: str = IMAGE_DIR, mask_dir: str = MASK_DIR, image_suffix: str = "",
                mask_suffix: str = ".png", label_ids: list[int] | None = None) -> SegDataset:
    image_root = os.path.join(root, image_dir.format(split=split))
    if not os.path.isdir(image_root):
        raise DatasetError(f"{image_root}: image folder not found (expected {root}/{image_dir} beside {root}/{mask_dir})")
    pairs = folder_pairs(image_root, os.path.join(root, mask_dir.format(split=split)), image_suffix, mask_suffix)
    default = [f"class_{value}" for value in label_ids] if label_ids is not None else None
    names, ids = class_list_of(root, class_names, default)
    if label_ids is not None:
        if len(label_ids) != len(names):
            raise DatasetError(f"{root}: data.params.label_ids lists {len(label_ids)} mask values for {len(names)} classes")
        ids = list(label_ids)
    return SegDataset(pairs, image_root, names, ids, ignore_index=ignore_index, transforms=transforms,
                      skip_bad_images=skip_bad_images, skip_bad_masks=skip_bad_masks)
