"""recognise(task="seg") on the seg shapes set's layouts, and its error when none fits."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.tools.recognise import recognise


def detect_seg_format(root: str) -> str:
    return recognise(root, task="seg").format


def test_each_layout(seg_shapes: str, tmp_path) -> None:
    assert detect_seg_format(seg_shapes) == "voc_seg"
    coco = tmp_path / "coco"
    shutil.copytree(os.path.join(seg_shapes, "annotations"), coco / "annotations")
    assert detect_seg_format(str(coco)) == "coco_seg"
    folders = tmp_path / "folders"
    os.makedirs(folders / "images" / "training")
    os.makedirs(folders / "annotations" / "training")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folders / "images" / "training" / "a.jpg")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folders / "annotations" / "training" / "a.png")
    assert detect_seg_format(str(folders)) == "mask_folder"


def test_nothing_recognised(tmp_path) -> None:
    os.makedirs(tmp_path / "annotations")
    (tmp_path / "annotations" / "instances_train.json").write_text('{"images": [], "categories": [], '
                                                                    '"annotations": [{"bbox": [0, 0, 1, 1]}]}')
    with pytest.raises(DatasetError, match="no segmentation dataset format recognised; expected one of voc_seg"):
        detect_seg_format(str(tmp_path))
    with pytest.raises(DatasetError, match="dataset folder not found"):
        detect_seg_format(str(tmp_path / "absent"))
