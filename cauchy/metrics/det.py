"""Detection evaluators: COCO mAP through pycocotools and Pascal VOC mAP@0.5 (area and 2007
11-point versions). Pure: ground truth and detections are collected in memory from the batches.

Both compare in original-image pixels: predictions arrive there (``DetectionMethod.predict``) and
the ground truth is the reader's own, unresized (each sample's ``truth``, in float64), so a
32x32 box stays at area 1024 and a match at IoU 0.5 does not depend on the input size. Boxes are
continuous coordinates, so IoU has no "+1" (unlike the VOC devkit's inclusive pixel boxes).
``difficult`` and crowd ground truth are ignored: a detection matching one is neither a hit nor a miss.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from cauchy.datasets import rle
from cauchy.datasets.rle import RLE
from cauchy.metrics.base import Evaluation, Evaluator
from cauchy.registry import EVALUATORS


class DetectionEvaluator(Evaluator):
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
        if "truth" not in batch:
            raise ValueError("a detection batch needs 'truth' (the reader's original boxes, labels, ignore "
                             "flags and areas; cauchy.datasets.det.base.DetDataset serves it)")
        for i, pred in enumerate(predictions):
            size, truth = batch["orig_size"][i], batch["truth"][i]
            image_id = batch["image_id"][i] if "image_id" in batch else len(self.images)
            self.images.append({
                "image_id": int(image_id), "height": int(size[0]), "width": int(size[1]),
                "gt_boxes": np.asarray(truth["boxes"], dtype=np.float64).reshape(-1, 4),
                "gt_labels": np.asarray(truth["labels"], dtype=np.int64),
                "gt_ignore": np.asarray(truth["ignore"], dtype=bool),
                "gt_areas": np.asarray(truth["areas"], dtype=np.float64),
                "boxes": pred["boxes"].double().cpu().numpy(), "scores": pred["scores"].double().cpu().numpy(),
                "labels": pred["labels"].cpu().numpy()})

    def state(self) -> dict[str, Any]:
        return {"images": self.images}

    def merge(self, states: list[dict[str, Any]]) -> None:
        self.images = [image for state in states for image in state["images"]]

    def results(self) -> list[dict[str, Any]]:
        """Detections as COCO results, ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``,
        at full precision (round when writing: ``rounded_results``)."""
        return [{"image_id": im["image_id"], "category_id": self.category_ids[int(label)], **found}
                for im in self.images for found, label in zip(coco_boxes(im), im["labels"])]


def coco_boxes(image: dict[str, Any]) -> list[dict[str, Any]]:
    """One image's detections as ``{"bbox": [x, y, w, h], "score"}`` in float64, in their order."""
    return [{"bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(score)}
            for (x1, y1, x2, y2), score in zip(image["boxes"], image["scores"])]


def rounded_results(results: list[dict[str, Any]], box_decimals: int = 2, score_decimals: int = 5
                    ) -> list[dict[str, Any]]:
    """COCO results as written to a file: boxes to 1/100 pixel, scores to 5 decimals (after evaluating)."""
    return [{**r, "bbox": [round(v, box_decimals) for v in r["bbox"]], "score": round(r["score"], score_decimals)}
            for r in results]


COCO_STATS = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")


def coco_evaluation(ground_truth: dict[str, Any], results: list[dict[str, Any]], iou_type: str,
                    class_names: list[str]) -> Evaluation:
    """pycocotools' 12 summary figures (``COCO_STATS``) and per-class AP of ``results`` against the
    COCO document ``ground_truth`` (``images``, ``annotations``; categories 1.. in ``class_names``'
    order), for ``iou_type`` "bbox" or "segm". Figures pycocotools cannot compute (e.g.
    ``map_large`` without large objects) are left out; without ground truth or results all are 0."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    scalars: dict[str, float] = {"count": float(len(ground_truth["images"]))}
    if not results or not ground_truth["annotations"]:
        return Evaluation({**scalars, **dict.fromkeys(COCO_STATS, 0.0)}, {"per_class": {}})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress on stdout
        gt = COCO()
        gt.dataset = {**ground_truth, "categories": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), iouType=iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    scalars.update({name: float(v) for name, v in zip(COCO_STATS, evaluation.stats) if v >= 0})
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # [iou, recall, class] over all areas, 100 dets
    per_class = {}
    for k, name in enumerate(class_names):
        p = precision[:, :, k]
        if (p > -1).any():
            per_class[name] = {"ap": float(p[p > -1].mean()), "ap50": float(p[0][p[0] > -1].mean())}
    return Evaluation(scalars, {"per_class": per_class})


def ground_truth_document(images: list[dict[str, Any]], masks: list[list[RLE]] | None = None) -> dict[str, Any]:
    """The collected ground truth as a COCO document (image ids are positions; categories 1..),
    with each object's mask (compressed RLE) when ``masks`` gives them per image."""
    doc_images, annotations = [], []
    for index, im in enumerate(images):
        doc_images.append({"id": index, "height": im["height"], "width": im["width"]})
        for k, ((x1, y1, x2, y2), label, ignore, area) in enumerate(zip(im["gt_boxes"], im["gt_labels"],
                                                                        im["gt_ignore"], im["gt_areas"])):
            annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": int(label) + 1,
                                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                                "area": float(area), "iscrowd": int(ignore)})
            if masks is not None:
                annotations[-1]["segmentation"] = masks[index][k]
    return {"images": doc_images, "annotations": annotations}


@EVALUATORS.register("coco")
class COCOEvaluator(DetectionEvaluator):
    """pycocotools' box AP over IoU 0.5:0.95 and its companions; area ranges use the annotations'
    own areas (COCO's), else box areas."""

    def evaluate(self) -> Evaluation:
        detections = [{"image_id": index, "category_id": int(label) + 1, **found}
                      for index, im in enumerate(self.images) for found, label in zip(coco_boxes(im), im["labels"])]
        return coco_evaluation(ground_truth_document(self.images), detections, "bbox", self.class_names)


@EVALUATORS.register("coco_segm")
class COCOMaskEvaluator(DetectionEvaluator):
    """pycocotools' mask AP (``iouType="segm"``) of instance segmentation: predictions' ``masks``
    (bool [N, H, W], original pixels) against the reader's original masks (``truth["masks"]``, COCO
    RLEs; area ranges by the annotations' areas). Figures are named as the box evaluator's (``map``,
    ``map50``, ...): beside it in a composite they read ``coco_segm/map``, ``coco/map``.

    ``results()`` gives the detections with their ``segmentation`` (compressed RLE, ``counts`` a
    string) as COCO's results files hold them; the mask figures are computed without the ``bbox``,
    so that pycocotools takes each detection's area from its mask, as for a segm-only results file.
    """

    def reset(self) -> None:
        super().reset()
        self.masks: list[list[RLE]] = []  # per image: predicted masks
        self.truth_masks: list[list[RLE]] = []

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        super().process(batch, predictions)
        for truth, pred in zip(batch["truth"], predictions):
            if "masks" not in truth or "masks" not in pred:
                raise ValueError("coco_segm compares instance masks: it needs a reader that serves them (coco with "
                                 "data.params.masks: true) and a method that predicts them (mask_rcnn)")
            self.truth_masks.append(list(truth["masks"]))
            self.masks.append(rle.encode(pred["masks"].cpu().numpy()))

    def state(self) -> dict[str, Any]:
        return {**super().state(), "masks": self.masks, "truth_masks": self.truth_masks}

    def merge(self, states: list[dict[str, Any]]) -> None:
        super().merge(states)
        self.masks = [masks for state in states for masks in state["masks"]]
        self.truth_masks = [masks for state in states for masks in state["truth_masks"]]

    def results(self) -> list[dict[str, Any]]:
        found = super().results()
        masks = [rle.to_json(m) for image in self.masks for m in image]
        return [{**r, "segmentation": m} for r, m in zip(found, masks)]

    def evaluate(self) -> Evaluation:
        detections = [{"image_id": index, "category_id": int(label) + 1, "segmentation": mask, "score": float(score)}
                      for index, (im, masks) in enumerate(zip(self.images, self.masks))
                      for label, score, mask in zip(im["labels"], im["scores"], masks)]
        return coco_evaluation(ground_truth_document(self.images, self.truth_masks), detections, "segm",
                               self.class_names)


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

    def evaluate(self) -> Evaluation:
        per_class = {}
        for label, name in enumerate(self.class_names):
            recall, precision, positives = self.class_curve(label)
            if positives:
                per_class[name] = {"ap50": voc_ap(recall, precision), "ap50_07": voc_ap(recall, precision, True),
                                   "positives": positives}
        aps = [v["ap50"] for v in per_class.values()]
        aps07 = [v["ap50_07"] for v in per_class.values()]
        return Evaluation({"map50": float(np.mean(aps)) if aps else 0.0,
                           "map50_07": float(np.mean(aps07)) if aps07 else 0.0, "count": float(len(self.images))},
                          {"per_class": per_class})
