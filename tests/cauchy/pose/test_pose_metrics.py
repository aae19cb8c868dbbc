"""OKS AP/AR equal pycocotools run on the same files (random people, some with few or no visible
keypoints, crowds, false positives), fed per image or per person; PCK/PCKh against plain numpy."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cauchy.datasets.pose.coco import read_coco_keypoints
from cauchy.datasets.pose.skeleton import COCO_SIGMAS
from cauchy.metrics.pose import OKS_STATS, OKSEvaluator, PCKEvaluator


def random_set(gen: np.random.Generator, k: int, sigmas: list[float] | None, images: int = 12):
    """A COCO keypoints document and predictions (noisy truth, missed people, false positives)."""
    category = {"id": 3, "name": "person", "keypoints": [f"j{i}" for i in range(k)], "skeleton": [[1, 2]]}
    if sigmas is not None:
        category["sigmas"] = sigmas
    doc = {"images": [], "annotations": [], "categories": [category]}
    found = []
    for image_id in range(1, images + 1):
        doc["images"].append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 200, "height": 200})
        for _ in range(int(gen.integers(0, 5))):
            x, y = gen.uniform(0, 60, 2)
            w, h = gen.uniform(8, 140, 2)
            xy = np.stack([gen.uniform(x, x + w, k), gen.uniform(y, y + h, k)], axis=1)
            labelled = int(gen.choice([0, 1, 2, k // 2, k]))  # some with few or no visible keypoints
            v = np.zeros(k)
            v[gen.permutation(k)[:labelled]] = gen.choice([1, 2], labelled)
            kps = np.concatenate([np.round(xy * (v[:, None] > 0), 2), v[:, None]], axis=1)
            crowd = int(gen.random() < 0.05)
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": image_id, "category_id": 3,
                                       "keypoints": kps.reshape(-1).tolist(), "num_keypoints": labelled,
                                       "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                                       "area": round(w * h * gen.uniform(0.3, 1.0), 2), "iscrowd": crowd})
            if gen.random() < 0.85:
                noisy = xy + gen.normal(0, gen.uniform(0.5, 8), xy.shape)
                found.append((image_id, len(doc["annotations"]) - 1, noisy, gen.uniform(0.05, 1)))
        for _ in range(int(gen.integers(0, 2))):
            found.append((image_id, None, gen.uniform(0, 200, (k, 2)), gen.uniform(0, 0.5)))
    return doc, found


def pycocotools_stats(path: str, results: list[dict], sigmas: np.ndarray) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(path)
        evaluation = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        evaluation.params.kpt_oks_sigmas = sigmas
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


@pytest.mark.parametrize("k, sigmas, seed", [(17, None, 0), (14, [0.05 + 0.005 * i for i in range(14)], 1),
                                             (5, [0.08] * 5, 2)])
def test_oks_equals_pycocotools_per_image_and_per_person(tmp_path, k, sigmas, seed):
    gen = np.random.default_rng(seed)
    doc, found = random_set(gen, k, sigmas)
    path = str(tmp_path / "gt.json")
    with open(path, "w") as fh:
        json.dump(doc, fh)
    images, metadata = read_coco_keypoints(path, str(tmp_path))
    results = [{"image_id": i, "category_id": 3, "score": float(s),
                "keypoints": np.concatenate([xy, np.ones((k, 1))], axis=1).reshape(-1).tolist()}
               for i, _, xy, s in found]
    expected = pycocotools_stats(path, results, np.array(sigmas or COCO_SIGMAS))
    assert expected[0] > 0

    whole = OKSEvaluator(k, **metadata)
    for image in images:
        mine = [f for f in found if f[0] == image.image_id]
        kps = torch.tensor(np.array([np.concatenate([xy, np.ones((k, 1))], axis=1) for _, _, xy, _ in mine])
                           .reshape(-1, k, 3))
        whole.process({"truth": [image.truth()]}, [{"keypoints": kps, "scores": torch.tensor([s for *_, s in mine])}])
    got = whole.evaluate().scalars
    for name, value in zip(OKS_STATS, expected):
        assert got.get(name, -1.0) == pytest.approx(value, abs=1e-9), name  # -1: pycocotools could not compute it

    per_person = OKSEvaluator(k, **metadata)  # top-down: one sample per prediction, several per image
    truths = {image.image_id: image.truth() for image in images}
    for image_id, person, xy, score in found:
        per_person.process({"truth": [truths[image_id]], "person": torch.tensor([person if person is not None else 0])},
                           [{"keypoints": torch.tensor(np.concatenate([xy, np.ones((k, 1))], axis=1))[None],
                             "scores": torch.tensor([score])}])
    for image_id in truths:  # images without any prediction still count
        per_person.process({"truth": [truths[image_id]]}, [{"keypoints": torch.zeros(0, k, 3), "scores": torch.zeros(0)}])
    assert per_person.evaluate().scalars == got


def test_oks_needs_sigmas_beyond_cocos_17():
    with pytest.raises(ValueError, match="sigmas"):
        OKSEvaluator(5)
    assert OKSEvaluator(17).evaluate().scalars["ap"] == 0.0


def test_pck_and_pckh_against_numpy():
    gen = np.random.default_rng(4)
    k = 6
    evaluator = PCKEvaluator(k, threshold=0.2, head_threshold=0.5)
    expected_hits = expected_head = total = head_total = 0
    for image_id in range(20):
        box = np.array([10, 20, 10 + gen.uniform(20, 90), 20 + gen.uniform(20, 90)])
        gt = np.concatenate([gen.uniform(10, 100, (1, k, 2)), gen.integers(0, 3, (1, k, 1))], axis=2)
        head = gen.uniform(5, 30) if image_id % 3 else float("nan")
        pred = gt[0, :, :2] + gen.normal(0, 8, (k, 2))
        truth = {"image_id": image_id, "keypoints": gt, "boxes": box[None], "areas": np.ones(1),
                 "iscrowd": np.zeros(1, bool), "num_keypoints": (gt[..., 2] > 0).sum(1), "head_sizes": np.array([head])}
        evaluator.process({"truth": [truth]}, [{"keypoints": torch.tensor(np.concatenate([pred, np.ones((k, 1))], 1))[None],
                                                "scores": torch.ones(1)}])
        size = max(box[2] - box[0], box[3] - box[1])
        for j in range(k):
            if gt[0, j, 2] == 0:
                continue
            d = float(np.hypot(*(pred[j] - gt[0, j, :2])))
            total += 1
            expected_hits += d <= 0.2 * size
            if not np.isnan(head):
                head_total += 1
                expected_head += d <= 0.5 * head
    scalars = evaluator.evaluate().scalars
    assert scalars["pck"] == pytest.approx(expected_hits / total, abs=1e-12)
    assert scalars["pckh"] == pytest.approx(expected_head / head_total, abs=1e-12)
    assert 0 < scalars["pck"] < 1 and 0 < scalars["pckh"] < 1


def test_pck_pairs_bottom_up_predictions_and_counts_missed_people():
    k = 2
    gt = np.array([[[10, 10, 2], [20, 20, 2]], [[100, 100, 2], [110, 110, 2]]], dtype=float)
    truth = {"image_id": 1, "keypoints": gt, "boxes": np.array([[0, 0, 50, 50], [90, 90, 140, 140]], float),
             "areas": np.ones(2), "iscrowd": np.zeros(2, bool), "num_keypoints": np.array([2, 2]),
             "head_sizes": np.full(2, np.nan)}
    evaluator = PCKEvaluator(k)
    # one prediction only, near the second person: it pairs with it; the first person misses both
    evaluator.process({"truth": [truth]}, [{"keypoints": torch.tensor([[[101., 101, 1], [111, 111, 1]]]),
                                            "scores": torch.ones(1)}])
    assert evaluator.evaluate().scalars["pck"] == 0.5
