"""Pose evaluators: COCO's OKS AP/AR through pycocotools (``iouType="keypoints"``) and PCK / PCKh.

Both compare in original-image pixels with the reader's own ground truth (each sample's ``truth``:
the whole image's annotations as read, crowds and people without keypoints included), never with
transformed keypoints. Predictions are ``{"keypoints": [P, K, 3] (x, y, score), "scores": [P]}`` per
sample; top-down samples (one person each, with ``person``) add up per image, since COCO's metric
matches all of an image's predictions with all of its people.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from cauchy.datasets.pose.skeleton import COCO_SIGMAS
from cauchy.metrics.base import Evaluation, Evaluator
from cauchy.registry import EVALUATORS

OKS_STATS = ("ap", "ap50", "ap75", "apm", "apl", "ar", "ar50", "ar75", "arm", "arl")
"""pycocotools' ten keypoint summary figures, in its order."""


def _truths(batch: dict[str, Any]) -> list[dict[str, Any]]:
    if "truth" not in batch:
        raise ValueError("a pose batch needs 'truth' (the reader's annotations of each image; "
                         "cauchy.datasets.pose.coco serves it)")
    return batch["truth"]


def _numpy(value: Any) -> np.ndarray:
    return value.detach().double().cpu().numpy() if hasattr(value, "detach") else np.asarray(value, dtype=np.float64)


class PoseEvaluator(Evaluator):
    """What both pose evaluators collect: each image's ground truth once, and every prediction with
    the image (and, for top-down samples, the person) it belongs to."""

    def __init__(self, num_classes: int, class_names: list[str] | None = None,
                 keypoint_names: list[str] | None = None, skeleton: list[list[int]] | None = None,
                 flip_pairs: list[list[int]] | None = None, sigmas: list[float] | None = None,
                 category_id: int = 1) -> None:
        """The keyword arguments after ``class_names`` are the pose dataset's ``metadata``."""
        self.num_keypoints = num_classes
        self.keypoint_names = keypoint_names or class_names or [str(i) for i in range(num_classes)]
        self.skeleton, self.sigmas, self.category_id = skeleton or [], sigmas, category_id
        self.reset()

    def reset(self) -> None:
        self.truth: dict[int, dict[str, Any]] = {}
        self.found: list[tuple[int, int | None, np.ndarray, float]] = []  # image id, person, [K, 3], score

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        for i, (truth, pred) in enumerate(zip(_truths(batch), predictions)):
            image_id = int(truth["image_id"])
            self.truth.setdefault(image_id, truth)
            person = int(batch["person"][i]) if "person" in batch else None
            keypoints, scores = _numpy(pred["keypoints"]).reshape(-1, self.num_keypoints, 3), _numpy(pred["scores"])
            for p in range(len(keypoints)):
                self.found.append((image_id, person, keypoints[p], float(scores[p])))

    def state(self) -> dict[str, Any]:
        return {"truth": self.truth, "found": self.found}

    def merge(self, states: list[dict[str, Any]]) -> None:
        self.truth, self.found = {}, []
        for state in states:  # an image split between two ranks (top-down: one sample a person) counts once
            for image_id, truth in state["truth"].items():
                self.truth.setdefault(image_id, truth)
            self.found.extend(state["found"])


@EVALUATORS.register("coco_keypoints")
class OKSEvaluator(PoseEvaluator):
    """COCO keypoint AP/AR (OKS), computed by pycocotools from the collected ground truth and
    predictions; the per-keypoint sigmas are the dataset's, else COCO's 17 (other keypoint counts
    must bring their own: the sticks set does). Without predictions or people every figure is 0."""

    main_metric = "ap"

    def __init__(self, num_classes: int, class_names: list[str] | None = None, **metadata: Any) -> None:
        super().__init__(num_classes, class_names, **metadata)
        if self.sigmas is None and num_classes != len(COCO_SIGMAS):
            raise ValueError(f"OKS needs per-keypoint sigmas: the data has {num_classes} keypoints (not COCO's 17) "
                             f"and its category lists no 'sigmas'")
        self.oks_sigmas = np.array(self.sigmas if self.sigmas is not None else COCO_SIGMAS, dtype=np.float64)

    def ground_truth(self) -> dict[str, Any]:
        """The collected ground truth as a COCO keypoints document."""
        annotations = []
        for image_id in sorted(self.truth):
            t = self.truth[image_id]
            for p in range(len(t["boxes"])):
                x0, y0, x1, y1 = (float(v) for v in t["boxes"][p])
                kps = np.asarray(t["keypoints"][p], dtype=np.float64)
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": self.category_id,
                    "keypoints": kps.reshape(-1).tolist(), "num_keypoints": int((kps[:, 2] > 0).sum()),
                    "area": float(t["areas"][p]), "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": int(t["iscrowd"][p])})
        return {"images": [{"id": i} for i in sorted(self.truth)], "annotations": annotations,
                "categories": [{"id": self.category_id, "name": "person", "keypoints": self.keypoint_names,
                                "skeleton": [[a + 1, b + 1] for a, b in self.skeleton]}]}

    def results(self) -> list[dict[str, Any]]:
        """Predictions in COCO's keypoint results format, at full precision."""
        return [{"image_id": image_id, "category_id": self.category_id, "keypoints": kps.reshape(-1).tolist(),
                 "score": score} for image_id, _, kps, score in self.found]

    def evaluate(self) -> Evaluation:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        doc, results = self.ground_truth(), self.results()
        scalars: dict[str, float] = {"count": float(len(doc["images"]))}
        if not results or not doc["annotations"]:
            return Evaluation({**scalars, **dict.fromkeys(OKS_STATS, 0.0)})
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress on stdout
            gt = COCO()
            gt.dataset = doc
            gt.createIndex()
            evaluation = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
            evaluation.params.kpt_oks_sigmas = self.oks_sigmas
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        scalars.update({name: float(v) for name, v in zip(OKS_STATS, evaluation.stats) if v >= 0})
        return Evaluation(scalars)


@EVALUATORS.register("pck")
class PCKEvaluator(PoseEvaluator):
    """PCK@``threshold``: the fraction of labelled keypoints predicted within ``threshold`` times the
    person's box size (its longer side); PCKh@``head_threshold`` where annotations give ``head_size``.

    Pairing: a top-down sample's prediction is its own person's; in bottom-up samples each annotated
    person (crowds left out) is paired greedily with a prediction, closest pairs first (mean distance
    over the person's labelled keypoints), so single-person sets pair trivially. A person left without a
    prediction misses all its keypoints. Tables: the per-keypoint figures."""

    main_metric = "pck"

    def __init__(self, num_classes: int, class_names: list[str] | None = None, threshold: float = 0.2,
                 head_threshold: float = 0.5, **metadata: Any) -> None:
        super().__init__(num_classes, class_names, **metadata)
        self.threshold, self.head_threshold = threshold, head_threshold

    def pairs(self) -> list[tuple[dict[str, Any], int, np.ndarray | None]]:
        """``(truth, person, predicted [K, 3] or None)`` for every annotated, non-crowd person."""
        by_image: dict[int, list[tuple[int | None, np.ndarray]]] = {}
        for image_id, person, kps, _ in self.found:
            by_image.setdefault(image_id, []).append((person, kps))
        out = []
        for image_id, truth in self.truth.items():
            found = by_image.get(image_id, [])
            free = [kps for person, kps in found if person is None]
            own = {person: kps for person, kps in found if person is not None}
            gts = {p: np.asarray(truth["keypoints"][p], dtype=np.float64) for p in range(len(truth["boxes"]))
                   if not truth["iscrowd"][p] and (np.asarray(truth["keypoints"][p])[:, 2] > 0).any()}
            free_people = [p for p in gts if p not in own]
            cost = np.array([[np.linalg.norm(kps[gts[p][:, 2] > 0, :2] - gts[p][gts[p][:, 2] > 0, :2], axis=1).mean()
                              for kps in free] for p in free_people]).reshape(len(free_people), len(free))
            for _ in range(min(cost.shape)):
                row, col = np.unravel_index(np.argmin(cost), cost.shape)
                own[free_people[row]] = free[col]
                cost[row, :], cost[:, col] = np.inf, np.inf
            out.extend((truth, p, own.get(p)) for p in gts)
        return out

    def evaluate(self) -> Evaluation:
        k = self.num_keypoints
        hits, head_hits, counts, head_counts = (np.zeros(k) for _ in range(4))
        for truth, p, predicted in self.pairs():
            gt = np.asarray(truth["keypoints"][p], dtype=np.float64)
            labelled = gt[:, 2] > 0
            x0, y0, x1, y1 = (float(v) for v in truth["boxes"][p])
            distance = np.full(k, np.inf) if predicted is None else np.linalg.norm(predicted[:, :2] - gt[:, :2], axis=1)
            counts += labelled
            hits += labelled & (distance <= self.threshold * max(x1 - x0, y1 - y0))
            head = float(truth["head_sizes"][p])
            if np.isfinite(head):
                head_counts += labelled
                head_hits += labelled & (distance <= self.head_threshold * head)
        scalars = {"pck": float(hits.sum() / max(counts.sum(), 1)), "count": float(len(self.truth))}
        per_keypoint = {name: {"pck": float(hits[j] / counts[j])} for j, name in enumerate(self.keypoint_names)
                        if counts[j]}
        if head_counts.sum():
            scalars["pckh"] = float(head_hits.sum() / head_counts.sum())
            for j, name in enumerate(self.keypoint_names):
                if head_counts[j]:
                    per_keypoint.setdefault(name, {})["pckh"] = float(head_hits[j] / head_counts[j])
        return Evaluation(scalars, {"per_keypoint": per_keypoint})
