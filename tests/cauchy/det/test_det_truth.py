"""The det evaluators compare with the reader's own ground truth, whatever the input size: equal to
pycocotools run directly on the same COCO files and detections (to 1e-9), boxes on the 32^2 and 96^2
area boundaries included."""
from __future__ import annotations

import contextlib
import io
import json
import os

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cauchy.datasets.transforms import build_transforms
from cauchy.methods.det import collate_detection
from cauchy.metrics.det import COCO_STATS
from cauchy.registry import DATASETS, EVALUATORS

BOUNDARY = [(32, 32), (16, 64), (64, 16), (96, 96), (48, 192), (31, 33), (33, 31)]  # w, h: areas 1024, 9216, ...


def write_coco(root: str, images: list[dict], annotations: list[dict], categories: list[dict]) -> None:
    os.makedirs(os.path.join(root, "val"), exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    for im in images:
        cv2.imwrite(os.path.join(root, "val", im["file_name"]), np.full((im["height"], im["width"], 3), 90, np.uint8))
    with open(os.path.join(root, "annotations", "instances_val.json"), "w") as fh:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, fh)


def random_coco(seed: int) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """Images of odd sizes; integer boxes on the area boundaries and random float boxes; detections
    that are exact copies, jittered copies and strays, with random scores."""
    gen = np.random.default_rng(seed)
    categories = [{"id": 3, "name": "x"}, {"id": 8, "name": "y"}, {"id": 11, "name": "z"}]
    images, annotations, detections = [], [], []
    for i in range(10):
        width, height = int(gen.integers(150, 260)), int(gen.integers(150, 260))
        images.append({"id": 40 + i, "file_name": f"{i}.png", "width": width, "height": height})
        boxes = []
        for w, h in [BOUNDARY[j] for j in gen.choice(len(BOUNDARY), size=3)]:
            if w <= width and h <= height:
                x, y = int(gen.integers(0, width - w + 1)), int(gen.integers(0, height - h + 1))
                boxes.append([float(x), float(y), float(w), float(h)])
        for _ in range(int(gen.integers(0, 4))):
            w, h = gen.uniform(4, 120, size=2)
            boxes.append([float(gen.uniform(0, width - w)), float(gen.uniform(0, height - h)), float(w), float(h)])
        for box in boxes:
            category = int(gen.choice([3, 8, 11]))
            annotations.append({"id": len(annotations) + 1, "image_id": 40 + i, "category_id": category, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
            kind = gen.random()
            if kind < 0.4:  # the box itself
                found = list(box)
            elif kind < 0.8:
                found = [box[0] + gen.normal(0, 2), box[1] + gen.normal(0, 2), box[2], box[3]]
            else:
                continue
            detections.append({"image_id": 40 + i, "category_id": category, "bbox": found, "score": float(gen.random())})
        for _ in range(int(gen.integers(0, 3))):
            detections.append({"image_id": 40 + i, "category_id": int(gen.choice([3, 8, 11])),
                               "bbox": [float(gen.uniform(0, width - 40)), float(gen.uniform(0, height - 40)), 32.0,
                                        32.0], "score": float(gen.random())})
    return images, annotations, categories, [as_predicted(d) for d in detections]


def as_predicted(detection: dict) -> dict:
    """The detection as a method gives it (xyxy) and as COCO results write it back (x2 - x1): at a
    random x, ``(x + 32) - x`` may be 32 plus or minus one ulp, which moves a box across an area range."""
    x, y, w, h = detection["bbox"]
    x2, y2 = x + w, y + h
    return {**detection, "bbox": [x, y, x2 - x, y2 - y]}


def pycocotools_stats(root: str, detections: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(os.path.join(root, "annotations", "instances_val.json"))
        ev = COCOeval(truth, truth.loadRes(detections), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def cauchy_scalars(root: str, detections: list[dict], input_size: list[int] | None, name: str = "coco"
                   ) -> dict[str, float]:
    """Reader -> transforms (resized to ``input_size``) -> collate -> evaluator, with the detections
    given per image in original pixels (as DetectionMethod.predict gives them)."""
    specs = ([{"name": "resize", "size": input_size}] if input_size else []) + [{"name": "normalize"}]
    dataset = DATASETS.build("coco", root=root, split="val", transforms=build_transforms(specs))
    evaluator = EVALUATORS.build(name, num_classes=len(dataset.class_names), class_names=dataset.class_names,
                                 **dataset.metadata)
    index = {c: i for i, c in enumerate(dataset.metadata["category_ids"])}
    evaluator.reset()
    for start in range(0, len(dataset), 4):
        batch = collate_detection([dataset[i] for i in range(start, min(start + 4, len(dataset)))])
        predictions = []
        for image_id in batch["image_id"]:
            mine = [d for d in detections if d["image_id"] == image_id]
            xywh = torch.tensor([d["bbox"] for d in mine], dtype=torch.float64).reshape(-1, 4)
            predictions.append({"boxes": torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1),
                                "scores": torch.tensor([d["score"] for d in mine], dtype=torch.float64),
                                "labels": torch.tensor([index[d["category_id"]] for d in mine], dtype=torch.int64)})
        evaluator.process(batch, predictions)
    return evaluator.evaluate().scalars


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("input_size", [None, [128, 128], [97, 211]])
def test_coco_equals_pycocotools_on_random_data(tmp_path, seed: int, input_size: list[int] | None) -> None:
    images, annotations, categories, detections = random_coco(seed)
    write_coco(str(tmp_path), images, annotations, categories)
    expected = pycocotools_stats(str(tmp_path), detections)
    scalars = cauchy_scalars(str(tmp_path), detections, input_size)
    for name, value in zip(COCO_STATS, expected):
        if value >= 0:
            assert scalars[name] == pytest.approx(value, abs=1e-9), name
        else:
            assert name not in scalars


def test_minimal_case_of_the_issue(tmp_path) -> None:
    """A 157x160 image at a 128x128 input, ground truth and detection both [94, 111, 126, 143]: a
    32x32 box has area 1024, which pycocotools counts as small and as medium (both ranges are closed)."""
    images = [{"id": 1, "file_name": "a.png", "width": 157, "height": 160}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [94, 111, 32, 32], "area": 1024, "iscrowd": 0}]
    write_coco(str(tmp_path), images, annotations, [{"id": 1, "name": "a"}])
    detections = [{"image_id": 1, "category_id": 1, "bbox": [94.0, 111.0, 32.0, 32.0], "score": 0.9}]
    expected = pycocotools_stats(str(tmp_path), detections)
    scalars = cauchy_scalars(str(tmp_path), detections, [128, 128])
    assert expected[4] == pytest.approx(1.0) and scalars["map_medium"] == pytest.approx(expected[4], abs=1e-9)
    assert scalars["map_small"] == pytest.approx(expected[3], abs=1e-9) and "map_large" not in scalars


@pytest.mark.parametrize("input_size", [None, [128, 128], [97, 211], [333, 301]])
def test_voc_match_at_iou_one_half_does_not_depend_on_the_input_size(tmp_path, input_size) -> None:
    """Ground truth [10, 20, 50, 40] and a detection covering exactly half of their union: a hit."""
    images = [{"id": 1, "file_name": "a.png", "width": 157, "height": 160}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 40, 20], "area": 800, "iscrowd": 0}]
    write_coco(str(tmp_path), images, annotations, [{"id": 1, "name": "a"}])
    detections = [{"image_id": 1, "category_id": 1, "bbox": [10.0, 20.0, 20.0, 20.0], "score": 0.9}]  # IoU 400/800
    assert cauchy_scalars(str(tmp_path), detections, input_size, name="voc")["map50"] == 1.0
    assert pycocotools_stats(str(tmp_path), detections)[1] == pytest.approx(1.0)


def test_rounding_happens_only_when_writing(tmp_path) -> None:
    """The evaluation reads full-precision detections; detections.json's copy is rounded."""
    from cauchy.metrics.det import rounded_results

    images, annotations, categories, detections = random_coco(5)
    detections = [as_predicted({**d, "bbox": [v + 0.0012345 for v in d["bbox"][:2]] + d["bbox"][2:],
                                "score": d["score"] * 0.999999}) for d in detections]
    write_coco(str(tmp_path), images, annotations, categories)
    expected = pycocotools_stats(str(tmp_path), detections)
    scalars = cauchy_scalars(str(tmp_path), detections, [128, 128])
    for name, value in zip(COCO_STATS, expected):
        if value >= 0:
            assert scalars[name] == pytest.approx(value, abs=1e-9), name
    written = rounded_results([{"image_id": 1, "category_id": 3, "bbox": [1.23456, 2.0, 3.0, 4.0], "score": 0.1234567}])
    assert written == [{"image_id": 1, "category_id": 3, "bbox": [1.23, 2.0, 3.0, 4.0], "score": 0.12346}]
