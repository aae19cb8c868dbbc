"""Which on-disk semantic segmentation format a directory holds, asking the readers' own rules
(their split-list and folder names, the folder pairing, the COCO loader), most explicit first."""
from __future__ import annotations

import glob
import os

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.seg import coco, mask_folder, voc
from cauchy.datasets.tools.detect import first_format


def _is_voc_seg(root: str) -> bool:
    lists = glob.glob(os.path.join(root, voc.SPLIT_LIST.format(split="*")))
    return bool(lists) and os.path.isdir(os.path.join(root, voc.MASK_DIR))


def _is_coco_seg(root: str) -> bool:
    for path in sorted(glob.glob(os.path.join(root, coco.DEFAULT_ANN_FILE.format(split="*")))):
        try:
            doc = coco.load_coco(path)
        except DatasetError:
            continue
        first = next(iter(doc.get("annotations") or []), None)
        if isinstance(first, dict) and "segmentation" in first:
            return True
    return False


def _is_mask_folder(root: str) -> bool:
    images = os.path.join(root, os.path.dirname(mask_folder.IMAGE_DIR))
    splits = sorted(entry.name for entry in os.scandir(images) if entry.is_dir()) if os.path.isdir(images) else []
    for split in splits:
        pairs = mask_folder.folder_pairs(os.path.join(root, mask_folder.IMAGE_DIR.format(split=split)),
                                         os.path.join(root, mask_folder.MASK_DIR.format(split=split)), "", ".png")
        if pairs and os.path.isfile(pairs[0].mask):
            return True
    return False


_FORMATS = {  # name: (check, layout for the error message), in the order they are tried
    "voc_seg": (_is_voc_seg, f"{voc.SPLIT_LIST.format(split='<split>')} with masks in {voc.MASK_DIR}/"),
    "coco_seg": (_is_coco_seg, f"{coco.DEFAULT_ANN_FILE.format(split='<split>')} with segmentation annotations"),
    "mask_folder": (_is_mask_folder, f"{mask_folder.IMAGE_DIR.format(split='<split>')}/<name>.jpg beside "
                                     f"{mask_folder.MASK_DIR.format(split='<split>')}/<name>.png"),
}


def detect_seg_format(root: str) -> str:
    """The ``DATASETS`` name of the segmentation format in ``root``; DatasetError if none fits."""
    return first_format(root, _FORMATS, "segmentation")
