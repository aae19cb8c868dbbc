"""torchcv's ``label_list`` as the mask_folder reader's ``label_ids``: raw mask values become class
indices in the listed order, the ignore value stays, any other value is a bad mask."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import cauchy.datasets  # noqa: F401  (the readers register themselves)
from cauchy.datasets.errors import DatasetError
from cauchy.registry import DATASETS


def write_pair(root, name: str, mask: np.ndarray) -> None:
    (root / "train" / "image").mkdir(parents=True, exist_ok=True)
    (root / "train" / "label").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "train" / "image" / f"{name}.png"), np.zeros((*mask.shape, 3), np.uint8))
    cv2.imwrite(str(root / "train" / "label" / f"{name}.png"), mask)


def reader(root, **params):
    return DATASETS.build("mask_folder", root=str(root), split="train", image_dir="{split}/image",
                          mask_dir="{split}/label", **params)


def test_label_ids_map_raw_values_to_classes(tmp_path) -> None:
    write_pair(tmp_path, "a", np.array([[7, 8], [26, 255]], np.uint8))
    dataset = reader(tmp_path, label_ids=[26, 7, 8])
    assert dataset.class_names == ["class_26", "class_7", "class_8"]
    assert dataset[0]["mask"].tolist() == [[1, 2], [0, 255]]
    named = reader(tmp_path, label_ids=[26, 7, 8], class_names=["car", "road", "walk"])
    assert named.class_names == ["car", "road", "walk"]
    with pytest.raises(DatasetError, match="label_ids lists 2 mask values for 3 classes"):
        reader(tmp_path, label_ids=[7, 8], class_names=["car", "road", "walk"])
    with pytest.raises(DatasetError, match="a.png"):
        reader(tmp_path, label_ids=[7, 8])[0]  # 26 is neither a class nor the ignore value
