"""Detection evaluators: COCO mAP through pycocotools and Pascal VOC mAP@0.5 (area and 2007
11-point versions). Pure: ground truth and detections are collected in memory from the batches.

Both compare in original-image pixels: predictions arrive there (``DetectionMethod.predict``)
and ground-truth boxes are mapped back with the batch's ``scale_factor``. Boxes are continuous
coordinates, so IoU has no "+1" (unlike the VOC devkit's inclusive pixel boxes). ``difficult``
and crowd ground truth are ignored: a detection matching one is neither a hit nor a miss.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch

from cauchy.datasets.det.base import to_original
from cauchy.registry import EVALUATORS


class DetectionEvaluator:
    """Collects per-image ground truth and detections; ``results()`` gives them in COCO's format."""

    main_metric = "map"

    def __init__(self, num_classes: int, class_names: list[str] | None = None,
                 category_ids: list[int] | None = None) -> None:
        self.num_classes = num_classes
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.category_ids = category_ids or list(range(1, num_classes + 1))
        self.reset()

    def reset(self) -> None:
        self.images: list[dict[str, Any]] = []

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        for i, pred in enumerate(predictions):
            size = batch["orig_size"][i]
            gt = to_original(batch["boxes"][i].float(), batch["scale_factor"][i], size)
            ignore = torch.zeros(len(gt), dtype=torch.bool, device=gt.device)
            for key in ("difficult", "iscrowd"):
                if key in batch:
                    ignore = ignore | batch[key][i].bool()
            image_id = batch["image_id"][i] if "image_id" in batch else len(self.images)
            self.images.append({
                "image_id": int(image_id), "height": int(size[0]), "width": int(size[1]),
                "gt_boxes": gt.cpu().numpy(), "gt_labels": batch["labels"][i].cpu().numpy(),
                "gt_ignore": ignore.cpu().numpy().astype(bool), "boxes": pred["boxes"].float().cpu().numpy(),
                "scores": pred["scores"].float().cpu().numpy(), "labels": pred["labels"].cpu().numpy()})

    def results(self) -> list[dict[str, Any]]:
        """Detections as COCO results: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``."""
        return [{"image_id": im["image_id"], "category_id": self.category_ids[int(label)],
                 "bbox": [round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)], "score": round(float(score), 5)}
                for im in self.images for (x1, y1, x2, y2), score, label in zip(im["boxes"], im["scores"], im["labels"])]


COCO_STATS = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")


def coco_metrics(ground_truth: dict[str, Any], results: list[dict[str, Any]], iou_type: str,
                 class_names: list[str], prefix: str = "", image_ids: list[int] | None = None) -> dict[str, Any]:
    """pycocotools' 12 summary figures (``COCO_STATS``, each with ``prefix``) and per-class AP of
    ``results`` against the COCO document ``ground_truth`` (its categories in ``class_names``' order).

    Figures pycocotools cannot compute (e.g. ``map_large`` without large objects) are left out;
    without ground truth or results every figure is 0. ``image_ids`` limits the evaluation to them.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results or not ground_truth["annotations"]:
        return {**{prefix + name: 0.0 for name in COCO_STATS}, prefix + "per_class": {}}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress on stdout
        gt = COCO()
        gt.dataset = ground_truth
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), iouType=iou_type)
        if image_ids is not None:
            evaluation.params.imgIds = image_ids
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    metrics: dict[str, Any] = {prefix + name: float(v) for name, v in zip(COCO_STATS, evaluation.stats) if v >= 0}
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # [iou, recall, class] over all areas, 100 dets
    per_class = {}
    for k, name in enumerate(class_names):
        p = precision[:, :, k]
        if (p > -1).any():
            per_class[name] = {"ap": float(p[p > -1].mean()), "ap50": float(p[0][p[0] > -1].mean())}
    metrics[prefix + "per_class"] = per_class
    return metrics


@EVALUATORS.register("coco")
class COCOEvaluator(DetectionEvaluator):
    """pycocotools' box AP over IoU 0.5:0.95 and its companions; area ranges use box areas."""

    def evaluate(self) -> dict[str, Any]:
        images, annotations = [], []
        for index, im in enumerate(self.images):
            images.append({"id": index, "height": im["height"], "width": im["width"]})
            for (x1, y1, x2, y2), label, ignore in zip(im["gt_boxes"], im["gt_labels"], im["gt_ignore"]):
                w, h = float(x2 - x1), float(y2 - y1)
                annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": int(label) + 1,
                                    "bbox": [float(x1), float(y1), w, h], "area": w * h, "iscrowd": int(ignore)})
        detections = [{"image_id": index, "category_id": int(label) + 1, "bbox": [float(x1), float(y1),
                       float(x2 - x1), float(y2 - y1)], "score": float(score)}
                      for index, im in enumerate(self.images)
                      for (x1, y1, x2, y2), score, label in zip(im["boxes"], im["scores"], im["labels"])]
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(self.class_names)]
        ground_truth = {"images": images, "annotations": annotations, "categories": categories}
        return {"count": len(images), **coco_metrics(ground_truth, detections, "bbox", self.class_names)}


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """Area under the precision envelope (VOC 2010+) or the mean of 11 sampled points (VOC 2007)."""
    if use_07_metric:
        return float(np.mean([precision[recall >= t].max(initial=0.0) for t in np.linspace(0, 1, 11)]))
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter)


@EVALUATORS.register("voc")
class VOCEvaluator(DetectionEvaluator):
    """Per class: detections by falling score are hits when they overlap an unmatched ground truth
    by ``iou`` or more (a second hit on the same one is a false positive); ``map50`` averages the
    area AP over classes that have ground truth, ``map50_07`` the 11-point AP."""

    main_metric = "map50"

    def __init__(self, num_classes: int, class_names: list[str] | None = None,
                 category_ids: list[int] | None = None, iou: float = 0.5) -> None:
        super().__init__(num_classes, class_names, category_ids)
        self.iou = iou

    def class_curve(self, label: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Recall and precision after each detection of class ``label``, and its ground-truth count."""
        positives, found = 0, []
        truth = []  # per image: this class's boxes, their ignore flags, and which are matched so far
        for index, im in enumerate(self.images):
            mine = im["gt_labels"] == label
            truth.append((im["gt_boxes"][mine], im["gt_ignore"][mine], np.zeros(int(mine.sum()), dtype=bool)))
            positives += int((mine & ~im["gt_ignore"]).sum())
            sel = im["labels"] == label
            found.extend((score, index, box) for score, box in zip(im["scores"][sel], im["boxes"][sel]))
        found.sort(key=lambda item: -item[0])
        hits = np.zeros(len(found))
        misses = np.zeros(len(found))
        for d, (_, index, box) in enumerate(found):
            gt, ignore, matched = truth[index]
            overlaps = box_iou(box, gt) if len(gt) else np.zeros(0)
            best = int(overlaps.argmax()) if len(gt) else -1
            if best < 0 or overlaps[best] < self.iou:
                misses[d] = 1
            elif ignore[best]:
                continue
            elif not matched[best]:
                matched[best] = True
                hits[d] = 1
            else:
                misses[d] = 1
        tp, fp = np.cumsum(hits), np.cumsum(misses)
        recall = tp / max(positives, 1)
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        return recall, precision, positives

    def evaluate(self) -> dict[str, Any]:
        per_class = {}
        for label, name in enumerate(self.class_names):
            recall, precision, positives = self.class_curve(label)
            if positives:
                per_class[name] = {"ap50": voc_ap(recall, precision), "ap50_07": voc_ap(recall, precision, True),
                                   "positives": positives}
        aps = [v["ap50"] for v in per_class.values()]
        aps07 = [v["ap50_07"] for v in per_class.values()]
        return {"map50": float(np.mean(aps)) if aps else 0.0, "map50_07": float(np.mean(aps07)) if aps07 else 0.0,
                "count": len(self.images), "per_class": per_class}
