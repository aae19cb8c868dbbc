"""Instance masks: COCO segmentations (polygons, RLE) read through pycocotools and checked, and the
geometric transforms carrying an [N,H,W] mask stack in step with the boxes."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

import cauchy.datasets  # noqa: F401
from cauchy.datasets import rle
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.rng import reseed
from cauchy.datasets.transforms import Compose, Normalize, RandomCrop, RandomExpand, RandomHFlip, Resize
from cauchy.methods.det import collate_detection, training_targets
from cauchy.registry import DATASETS

H, W = 40, 50
CROWD_MASK = np.zeros((H, W), np.uint8)
CROWD_MASK[30:38, 2:20] = 1


def annotations() -> list[dict]:
    """A triangle (polygon), a square (uncompressed RLE), a crowd region (compressed RLE)."""
    square = np.zeros((H, W), np.uint8)
    square[5:15, 30:45] = 1
    uncompressed = {"size": [H, W], "counts": [int(v) for v in rle_counts(square)]}
    crowd = mask_utils.encode(np.asfortranarray(CROWD_MASK))
    crowd["counts"] = crowd["counts"].decode("ascii")
    return [
        {"id": 1, "image_id": 7, "category_id": 3, "bbox": [2, 2, 20, 20], "area": 200.0,
         "segmentation": [[2, 2, 22, 2, 2, 22]], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 5, "bbox": [30, 5, 15, 10], "area": 150.0,
         "segmentation": uncompressed, "iscrowd": 0},
        {"id": 3, "image_id": 7, "category_id": 3, "bbox": [2, 30, 18, 8], "area": 144.0,
         "segmentation": crowd, "iscrowd": 1},
    ]


def rle_counts(mask: np.ndarray) -> list[int]:
    """Column-major run lengths starting with zeros, as COCO's uncompressed RLE."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def write_coco(root: str, anns: list[dict], height: int = H) -> None:
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    cv2.imwrite(os.path.join(root, "train", "a.png"), np.full((H, W, 3), 90, np.uint8))
    doc = {"images": [{"id": 7, "file_name": "a.png", "height": height, "width": W}], "annotations": anns,
           "categories": [{"id": 3, "name": "tri"}, {"id": 5, "name": "sq"}]}
    with open(os.path.join(root, "annotations", "instances_train.json"), "w") as fh:
        json.dump(doc, fh)


def test_coco_masks_from_polygons_and_rle_equal_pycocotools(tmp_path) -> None:
    anns = annotations()
    write_coco(str(tmp_path), anns)
    ds = DATASETS.build("coco", root=str(tmp_path), split="train", masks=True)
    item = ds[0]
    assert item["masks"].shape == (3, H, W) and item["masks"].dtype == np.uint8
    from pycocotools.coco import COCO

    reference = COCO(os.path.join(str(tmp_path), "annotations", "instances_train.json"))
    for k, ann in enumerate(reference.loadAnns(reference.getAnnIds(imgIds=[7]))):
        np.testing.assert_array_equal(item["masks"][k], reference.annToMask(ann))
    assert item["iscrowd"].tolist() == [False, False, True] and item["labels"].tolist() == [0, 1, 0]
    assert "masks" not in DATASETS.build("coco", root=str(tmp_path), split="train")[0]


@pytest.mark.parametrize("segmentation, message", [
    ([[1, 2, 3, 4]], "polygons of at least 3 x, y pairs; polygon 0"),
    ([], "empty list of polygons"),
    (None, "list of polygons or an RLE"),
    ({"size": [10, 10], "counts": [100]}, "is not the image's [40, 50]"),
    ({"size": [H, W], "counts": [5, 6]}, "summing to 2000"),
    ({"size": [H, W], "counts": "0o1"}, "summing to 2000"),
])
def test_bad_segmentations_are_errors_naming_file_and_annotation(tmp_path, segmentation, message) -> None:
    anns = annotations()
    anns[1]["segmentation"] = segmentation
    write_coco(str(tmp_path), anns)
    with pytest.raises(DatasetError) as err:
        DATASETS.build("coco", root=str(tmp_path), split="train", masks=True)
    assert "instances_train.json" in str(err.value) and "annotation id 2" in str(err.value)
    assert message in str(err.value)


def test_image_of_another_size_than_its_masks_is_an_error_naming_it(tmp_path) -> None:
    write_coco(str(tmp_path), annotations()[:1], height=30)
    ds = DATASETS.build("coco", root=str(tmp_path), split="train", masks=True)
    with pytest.raises(DatasetError, match=r"a\.png: the image is 50x40 but its annotation's masks are 50x30"):
        ds[0]


def test_skipped_boxes_take_their_masks_with_them(tmp_path) -> None:
    anns = annotations()
    anns[0]["bbox"] = [60, 60, 5, 5]  # outside the image: no area left
    write_coco(str(tmp_path), anns)
    ds = DATASETS.build("coco", root=str(tmp_path), split="train", masks=True, skip_bad_boxes=True)
    item = ds[0]
    assert ds.skipped_boxes == 1 and item["masks"].shape == (2, H, W)
    np.testing.assert_array_equal(item["masks"][1], CROWD_MASK)


def test_rle_round_trip_and_compressed_counts_match_pycocotools() -> None:
    gen = np.random.default_rng(0)
    masks = (gen.random((4, 13, 17)) > 0.6).astype(np.uint8)
    encoded = rle.encode(masks)
    np.testing.assert_array_equal(rle.decode(encoded, 13, 17), masks)
    for mask, enc in zip(masks, encoded):
        assert rle.compressed_counts(enc["counts"]) == rle_counts(mask)
    assert json.loads(json.dumps(rle.to_json(encoded[0])))["counts"] == encoded[0]["counts"].decode()


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


@st.composite
def scenes(draw):
    """Up to four non-overlapping-by-construction painted rectangles, each with its own mask."""
    h, w = draw(st.integers(16, 64)), draw(st.integers(16, 64))
    boxes, masks = [], []
    image = np.full((h, w, 3), 40, np.uint8)
    for k in range(draw(st.integers(0, 4))):
        x1, y1 = draw(st.integers(0, w - 4)), draw(st.integers(0, h - 4))
        x2, y2 = draw(st.integers(x1 + 4, w)), draw(st.integers(y1 + 4, h))
        boxes.append([x1, y1, x2, y2])
        image[y1:y2, x1:x2] = COLOURS[k]
        mask = np.zeros((h, w), np.uint8)
        mask[y1:y2, x1:x2] = 1
        masks.append(mask)
    for k in range(len(masks)):  # what later rectangles cover is no longer part of an earlier one
        for later in masks[k + 1:]:
            masks[k][later == 1] = 0
    n = len(boxes)
    return {"image": image, "boxes": np.array(boxes, np.float32).reshape(-1, 4),
            "labels": np.arange(n, dtype=np.int64), "iscrowd": np.zeros(n, bool),
            "masks": np.array(masks, np.uint8).reshape(n, h, w), "orig_size": (h, w)}


@settings(max_examples=60, deadline=None, database=None)
@given(scene=scenes(), seed=st.integers(0, 2**31), crop=st.integers(12, 80), size=st.integers(24, 96))
def test_masks_move_with_image_and_boxes(scene, seed, crop, size) -> None:
    reseed(seed)
    pipeline = Compose([RandomExpand(ratio=[1.0, 2.0], p=0.5, fill=40), RandomHFlip(p=0.5),
                        RandomCrop(size=crop, fill=40)])
    out = pipeline(scene)
    assert out["masks"].shape == (len(out["boxes"]), crop, crop) and out["masks"].dtype == np.uint8
    for mask, box, label in zip(out["masks"], out["boxes"], out["labels"]):
        np.testing.assert_array_equal(mask == 1, (out["image"] == COLOURS[label]).all(axis=-1))
        ys, xs = np.nonzero(mask)
        if xs.size:  # a mask lies inside its box
            assert xs.min() >= box[0] and xs.max() + 1 <= box[2] and ys.min() >= box[1] and ys.max() + 1 <= box[3]
    resized = Resize(size=size, keep_ratio=True)(out)
    assert resized["masks"].shape == (len(out["boxes"]), size, size)
    for mask, box in zip(resized["masks"], resized["boxes"]):
        ys, xs = np.nonzero(mask)
        if xs.size:  # still inside its box, to within the pixel nearest-neighbour sampling may add
            assert xs.min() >= box[0] - 1 and xs.max() <= box[2] and ys.min() >= box[1] - 1 and ys.max() <= box[3]


def test_collate_keeps_each_images_masks_at_its_size_and_targets_drop_crowds() -> None:
    normalize = Normalize()
    samples = []
    for h, w, crowd in ((20, 30, [False, True]), (24, 16, [False, False])):
        masks = np.zeros((2, h, w), np.uint8)
        masks[:, 2:5, 3:9] = 1
        samples.append(normalize({"image": np.zeros((h, w, 3), np.uint8), "boxes": np.array([[3, 2, 9, 5]] * 2,
                                  np.float32), "labels": np.array([0, 1]), "iscrowd": np.array(crowd),
                                  "masks": masks, "orig_size": (h, w)}))
    batch = collate_detection(samples)
    assert batch["image"].shape == (2, 3, 32, 32)
    assert [tuple(m.shape) for m in batch["masks"]] == [(2, 20, 30), (2, 24, 16)]
    targets = training_targets(batch)
    assert [len(t["masks"]) for t in targets] == [1, 2] and targets[0]["masks"].dtype.is_floating_point is False
