"""scripts/seg/shapes/prepare.py: the VOC masks and the COCO instances describe the same pixels."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image
from pycocotools.coco import COCO


def test_voc_and_coco_layouts_agree(seg_shapes: str, seg_prepare) -> None:
    ids = open(os.path.join(seg_shapes, "ImageSets", "Segmentation", "train.txt")).read().split()
    assert len(ids) == 8
    coco = COCO(os.path.join(seg_shapes, "annotations", "instances_train.json"))
    cat_to_label = {cid: i + 1 for i, cid in enumerate(seg_prepare.CATEGORY_IDS)}
    kinds = set()
    for image_id, name in enumerate(ids, start=1):
        png = Image.open(os.path.join(seg_shapes, "SegmentationClass", f"{name}.png"))
        assert png.mode == "P"
        labels = np.array(png)
        info = coco.loadImgs(image_id)[0]
        assert labels.shape == (info["height"], info["width"])
        assert set(np.unique(labels)) <= {0, 1, 2, 3, 4, 255}
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
            kinds.add(type(ann["segmentation"]).__name__)
            inside = coco.annToMask(ann).astype(bool) & (labels != 255)
            assert inside.sum() > 0.8 * ann["area"] - 4 * np.sqrt(ann["area"])
            assert (labels[inside] == cat_to_label[ann["category_id"]]).all()
    assert kinds == {"list", "dict"}


def test_same_arguments_same_files(tmp_path, seg_prepare) -> None:
    for out in ("a", "b"):
        seg_prepare.prepare(str(tmp_path / out), train=2, val=1, size=48, seed=5)
    for sub in ("SegmentationClass/000002.png", "annotations/instances_train.json"):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "b" / sub).read_bytes()
