"""The seg readers: VOC, mask folder pairs with a class list, COCO rasterised; bad masks."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

import cauchy.datasets  # noqa: F401
from cauchy.datasets.errors import DatasetError
from cauchy.registry import DATASETS


def test_voc_and_coco_give_the_same_labels(seg_shapes: str) -> None:
    voc = DATASETS.build("voc_seg", root=seg_shapes, split="val")
    coco = DATASETS.build("coco_seg", root=seg_shapes, split="val", image_dir="JPEGImages")
    assert voc.class_names == coco.class_names == ["background", "circle", "square", "triangle", "star"]
    assert len(voc) == len(coco) == 4 and voc.metadata == {"ignore_index": 255}
    for i in range(4):
        a, b = voc[i], coco[i]
        assert a["mask"].shape == a["image"].shape[:2] == tuple(a["orig_size"])
        labelled = a["mask"] != 255
        agree = (a["mask"][labelled] == b["mask"][labelled]).mean()
        assert agree > 0.97  # polygons through pixel centres lose part of the outline
    assert (voc.palette[:3] == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]).all()


def write_pair(root: str, split: str, name: str, mask: np.ndarray, image_size: tuple[int, int] | None = None) -> None:
    h, w = image_size or mask.shape
    for sub in (f"images/{split}", f"annotations/{split}"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    cv2.imwrite(os.path.join(root, "images", split, f"{name}.jpg"), np.full((h, w, 3), 90, np.uint8))
    Image.fromarray(mask).save(os.path.join(root, "annotations", split, f"{name}.png"))


def test_mask_folder_maps_label_ids(tmp_path) -> None:
    root = str(tmp_path)
    (tmp_path / "classes.txt").write_text("# id name\n7 road\n11 building\n\n24 person\n")
    mask = np.array([[7, 11], [24, 255]], dtype=np.uint8)
    write_pair(root, "train", "a", mask)
    data = DATASETS.build("mask_folder", root=root, split="train")
    assert data.class_names == ["road", "building", "person"]
    assert data[0]["mask"].tolist() == [[0, 1], [2, 255]]
    val = DATASETS.build("mask_folder", root=root, split="train", class_names=["road", "building", "person"])
    assert val[0]["mask"].tolist() == [[0, 1], [2, 255]]  # the train split's names keep the file's ids


def test_bad_masks_are_errors_naming_the_file_or_skipped(tmp_path) -> None:
    root = str(tmp_path)
    (tmp_path / "classes.txt").write_text("background\nthing\n")
    write_pair(root, "train", "good", np.array([[0, 1], [1, 255]], dtype=np.uint8))
    write_pair(root, "train", "outside", np.array([[0, 5], [1, 1]], dtype=np.uint8))
    write_pair(root, "train", "small", np.zeros((2, 2), np.uint8), image_size=(3, 2))
    rgb = os.path.join(root, "images", "train", "rgb.jpg")
    cv2.imwrite(rgb, np.zeros((2, 2, 3), np.uint8))
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(os.path.join(root, "annotations", "train", "rgb.png"))
    data = DATASETS.build("mask_folder", root=root, split="train")
    problems = {}
    for i in range(len(data)):
        try:
            data[i]
        except DatasetError as exc:
            problems[os.path.basename(data.pairs[i].image)] = str(exc)
    assert sorted(problems) == ["outside.jpg", "rgb.jpg", "small.jpg"]
    assert "outside.png: mask values [5]" in problems["outside.jpg"]
    assert "small.png: mask is 2x2 but its image is 2x3" in problems["small.jpg"]
    assert "rgb.png: mask must be a single-channel or palette image" in problems["rgb.jpg"]
    skipping = DATASETS.build("mask_folder", root=root, split="train", skip_bad_masks=True)
    assert len(skipping) == 1 and skipping.skipped_masks == 3
    assert sorted(os.path.basename(f) for f, _ in skipping.bad_masks) == ["outside.png", "rgb.png", "small.png"]


def test_missing_mask_and_ignore_collision(tmp_path) -> None:
    root = str(tmp_path)
    write_pair(root, "train", "a", np.zeros((2, 2), np.uint8))
    os.remove(os.path.join(root, "annotations", "train", "a.png"))
    with pytest.raises(DatasetError, match="a.png: mask file not found"):
        DATASETS.build("mask_folder", root=root, split="train", class_names=["bg", "x"])
    with pytest.raises(DatasetError, match="ignore value 1 collides"):
        DATASETS.build("mask_folder", root=root, split="train", class_names=["bg", "x"], ignore_index=1,
                       skip_bad_masks=True)
    with pytest.raises(DatasetError, match="class list not found"):
        DATASETS.build("mask_folder", root=root, split="train")


def test_coco_bad_segmentation_names_the_annotation(tmp_path) -> None:
    import json
    os.makedirs(tmp_path / "train")
    cv2.imwrite(str(tmp_path / "train" / "a.jpg"), np.zeros((4, 4, 3), np.uint8))
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
           "categories": [{"id": 3, "name": "x"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "segmentation": [[0, 0, 1]], "bbox": [0, 0, 1, 1]},
                           {"id": 2, "image_id": 1, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 4, 4],
                            "segmentation": {"size": [4, 4], "counts": [12, 4]}}]}
    os.makedirs(tmp_path / "annotations")
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    data = DATASETS.build("coco_seg", root=str(tmp_path), split="train")
    with pytest.raises(DatasetError, match=r"annotations\[0\]: segmentation must be polygons"):
        data[0]
    doc["annotations"] = doc["annotations"][1:]
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    mask = DATASETS.build("coco_seg", root=str(tmp_path), split="train")[0]["mask"]
    assert (mask[:, 3] == 255).all() and (mask[:, :3] == 0).all()  # the crowd column is ignored
