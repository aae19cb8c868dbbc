"""Pascal VOC segmentation: ``root/ImageSets/Segmentation/<split>.txt`` lists ids, with images in
``root/JPEGImages/<id>.jpg`` and palette PNG label maps in ``root/SegmentationClass/<id>.png``
(255 marks unlabelled pixels). Class names: ``root/classes.txt`` if present, else
``data.class_names``, else VOC's 21 classes."""
from __future__ import annotations

import os
from collections.abc import Callable

from cauchy.datasets.det.voc import read_split_ids
from cauchy.datasets.io import require_file
from cauchy.datasets.seg.base import Pair, Sample, SegDataset
from cauchy.datasets.seg.masks import class_list_of, read_mask
from cauchy.registry import DATASETS

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
SPLIT_LIST = os.path.join("ImageSets", "Segmentation", "{split}.txt")
MASK_DIR = "SegmentationClass"


@DATASETS.register("voc_seg")
def voc_seg(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None, skip_bad_images: bool = False,
            class_names: list[str] | None = None, skip_bad_masks: bool = False, ignore_index: int = 255,
            image_ext: str = ".jpg") -> SegDataset:
    split_file = require_file(os.path.join(root, SPLIT_LIST.format(split=split)), "VOC segmentation split list")
    pairs = [Pair(os.path.join(root, "JPEGImages", name + image_ext), os.path.join(root, MASK_DIR, name + ".png"),
                  os.path.join(root, MASK_DIR, name + ".png")) for name in read_split_ids(split_file)]
    names, ids = class_list_of(root, class_names, VOC_CLASSES)
    palette = read_mask(pairs[0].mask)[1] if pairs and os.path.isfile(pairs[0].mask) else None
    return SegDataset(pairs, split_file, names, ids, ignore_index=ignore_index, transforms=transforms,
                      skip_bad_images=skip_bad_images, skip_bad_masks=skip_bad_masks, palette=palette)
