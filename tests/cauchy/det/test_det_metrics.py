"""The VOC and COCO evaluators against a hand-computed example and against pycocotools run directly."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cauchy.metrics.det import COCOEvaluator, VOCEvaluator, voc_ap
from cauchy.registry import EVALUATORS


def truth_of(im: dict) -> dict:
    gt = np.asarray(im["gt"], dtype=np.float64).reshape(-1, 4)
    return {"boxes": gt, "labels": np.asarray(im["labels"], dtype=np.int64),
            "ignore": np.asarray(im.get("difficult", [False] * len(im["labels"])), dtype=bool),
            "areas": (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])}


def batch_of(images: list[dict]) -> dict:
    """A collated batch: boxes in network-input pixels (``scale_factor`` applied), ``truth`` as read."""
    return {
        "truth": [truth_of(im) for im in images],
        "boxes": [torch.tensor(im["gt"], dtype=torch.float32).reshape(-1, 4) * im.get("scale", 1.0) for im in images],
        "labels": [torch.tensor(im["labels"], dtype=torch.int64) for im in images],
        "difficult": [torch.tensor(im.get("difficult", [False] * len(im["labels"])), dtype=torch.bool) for im in images],
        "iscrowd": [torch.zeros(len(im["labels"]), dtype=torch.bool) for im in images],
        "scale_factor": torch.tensor([[im.get("scale", 1.0)] * 2 for im in images]),
        "orig_size": torch.tensor([[120, 120]] * len(images)),
        "image_id": [im["id"] for im in images],
    }


def preds_of(images: list[dict]) -> list[dict]:
    return [{"boxes": torch.tensor(im["dets"], dtype=torch.float32).reshape(-1, 4),
             "scores": torch.tensor(im["scores"], dtype=torch.float32),
             "labels": torch.tensor(im["det_labels"], dtype=torch.int64)} for im in images]


# One class. Image 5: two boxes; image 9 (given at half scale): one box and one difficult box.
# Detections by score: hit G1, duplicate of G1 (false), hit G3, on the difficult box (ignored), stray (false).
# Recall 1/3, 1/3, 2/3, 2/3 with precision 1, 1/2, 2/3, 1/2 over three positives.
HAND = [
    {"id": 5, "gt": [[0, 0, 10, 10], [20, 20, 30, 30]], "labels": [0, 0],
     "dets": [[0, 0, 10, 10], [0, 0, 10, 10], [100, 100, 110, 110]], "scores": [0.9, 0.8, 0.5], "det_labels": [0, 0, 0]},
    {"id": 9, "gt": [[0, 0, 10, 10], [50, 50, 60, 60]], "labels": [0, 0], "difficult": [False, True], "scale": 0.5,
     "dets": [[1, 0, 10, 10], [50, 50, 60, 60]], "scores": [0.7, 0.6], "det_labels": [0, 0]},
]


def run(evaluator, images: list[dict]) -> dict:
    evaluator.reset()
    evaluator.process(batch_of(images), preds_of(images))
    result = evaluator.evaluate()
    return {**result.scalars, **result.tables}


def test_voc_evaluator_matches_the_hand_computed_example() -> None:
    metrics = run(VOCEvaluator(num_classes=2, class_names=["a", "b"]), HAND)
    assert metrics["map50"] == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)  # area under the envelope: 5/9
    assert metrics["map50_07"] == pytest.approx((4 * 1 + 3 * 2 / 3) / 11)  # 11 points: 6/11
    assert set(metrics["per_class"]) == {"a"}  # class b has no ground truth: left out of the mean


def test_coco_evaluator_matches_the_hand_computed_example() -> None:
    metrics = run(COCOEvaluator(num_classes=1, class_names=["a"]), HAND)
    # 101 recall points: 34 at precision 1 (r <= 1/3), 33 at 2/3 (r <= 2/3), the rest at 0
    assert metrics["map50"] == pytest.approx((34 + 33 * 2 / 3) / 101)
    assert metrics["count"] == 2


def test_voc_ap_interpolations() -> None:
    recall, precision = np.array([0.5, 1.0]), np.array([1.0, 0.5])
    assert voc_ap(recall, precision) == pytest.approx(0.75)
    assert voc_ap(recall, precision, use_07_metric=True) == pytest.approx((6 * 1.0 + 5 * 0.5) / 11)


def random_scene(seed: int, images: int = 12, classes: int = 3) -> list[dict]:
    gen = np.random.default_rng(seed)
    scene = []
    for i in range(images):
        n = int(gen.integers(0, 6))
        xy = gen.uniform(0, 80, size=(n, 2))
        gt = np.concatenate([xy, xy + gen.uniform(8, 40, size=(n, 2))], axis=1)
        labels = gen.integers(0, classes, size=n)
        keep = gen.random(n) < 0.8
        dets = gt[keep] + gen.normal(0, 3, size=(int(keep.sum()), 4))
        det_labels = labels[keep].copy()
        stray = int(gen.integers(0, 3))
        sxy = gen.uniform(0, 90, size=(stray, 2))
        dets = np.concatenate([dets, np.concatenate([sxy, sxy + 20], axis=1)])
        det_labels = np.concatenate([det_labels, gen.integers(0, classes, size=stray)])
        scene.append({"id": 100 + i, "gt": gt.tolist(), "labels": labels.tolist(), "dets": dets.tolist(),
                      "scores": gen.random(len(dets)).tolist(), "det_labels": det_labels.tolist(),
                      "scale": float(gen.choice([0.5, 1.0, 2.0]))})
    return scene


def pycocotools_stats(scene: list[dict], category_ids: list[int]) -> np.ndarray:
    """pycocotools run directly on COCO JSON written from the scene (original pixels, xywh)."""
    xywh = lambda b: [b[0], b[1], b[2] - b[0], b[3] - b[1]]  # noqa: E731
    gt = {"images": [{"id": im["id"], "width": 120, "height": 120} for im in scene],
          "categories": [{"id": c} for c in category_ids],
          "annotations": [{"id": k, "image_id": im["id"], "category_id": category_ids[label], "bbox": xywh(box),
                           "area": xywh(box)[2] * xywh(box)[3], "iscrowd": 0}
                          for k, (im, box, label) in enumerate(
                              ((im, box, label) for im in scene for box, label in zip(im["gt"], im["labels"])), 1)]}
    dets = [{"image_id": im["id"], "category_id": category_ids[label], "bbox": xywh(np.clip(box, 0, 120).tolist()),
             "score": score} for im in scene for box, score, label in zip(im["dets"], im["scores"], im["det_labels"])]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluators_agree_with_pycocotools(seed: int) -> None:
    scene = random_scene(seed)
    expected = pycocotools_stats(scene, [3, 8, 11])
    coco = EVALUATORS.build("coco", num_classes=3, class_names=["x", "y", "z"], category_ids=[3, 8, 11])
    metrics = run(coco, scene)
    names = ["map", "map50", "map75", "map_small", "map_medium", "map_large", "ar1", "ar10", "ar100"]
    for name, value in zip(names, expected):
        if value >= 0:
            assert metrics[name] == pytest.approx(value, abs=1e-6), name
    # VOC's area AP@0.5 and COCO's 101-point AP@0.5 differ only by the interpolation
    voc = run(VOCEvaluator(num_classes=3, class_names=["x", "y", "z"]), scene)
    assert voc["map50"] == pytest.approx(expected[1], abs=0.03)
    results = coco.results()
    assert {r["category_id"] for r in results} <= {3, 8, 11}
    assert {r["image_id"] for r in results} <= {im["id"] for im in scene}
    assert len(results) == sum(len(im["dets"]) for im in scene)


def test_no_detections_gives_zero_not_an_error() -> None:
    empty = [{**HAND[0], "dets": [], "scores": [], "det_labels": []}]
    assert run(COCOEvaluator(num_classes=1), empty)["map"] == 0.0
    assert run(VOCEvaluator(num_classes=1), empty)["map50"] == 0.0


def test_composite_names_each_members_figures_and_gives_the_det_part_to_test_files() -> None:
    from cauchy import rundir
    from cauchy.methods.det import DetectionMethod
    from cauchy.metrics.base import CompositeEvaluator

    scene = random_scene(4)
    members = {"coco": COCOEvaluator(num_classes=3), "voc": VOCEvaluator(num_classes=3)}
    composite = CompositeEvaluator(members)
    assert composite.main_metric == "coco/map" and composite.parts() == list(members.values())
    composite.reset()
    composite.process(batch_of(scene), preds_of(scene))
    both = composite.evaluate()
    alone = {name: run(EVALUATORS.build(name, num_classes=3), scene) for name in members}
    assert both.scalars == {f"{name}/{k}": v for name, m in alone.items() for k, v in m.items() if k != "per_class"}
    assert both.tables["voc/per_class"] == alone["voc"]["per_class"]
    files = DetectionMethod.test_files(None, composite)  # the method's rule needs no model
    assert list(files) == [rundir.DETECTIONS] and len(files[rundir.DETECTIONS]) == sum(len(im["dets"]) for im in scene)
