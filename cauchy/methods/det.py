"""Object detection: what the detectors share (batching images of different sizes, crowd boxes
left out of training, predictions mapped back to original pixels, drawing) and the two families:
torchvision's detectors, which compute their own losses, and YOLOv3, whose assignment, loss and
decoding live in ``cauchy.models.det.yolov3``. Both train through the same engine and Trainer."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.roi_heads import paste_masks_in_image

from cauchy import rundir
from cauchy.datasets import batches, geometry, rle
from cauchy.datasets.det.base import to_original
from cauchy.hypes import HypesError
from cauchy.methods.base import Method
from cauchy.metrics.base import Evaluator
from cauchy.metrics.det import DetectionEvaluator, rounded_results
from cauchy.models.det.torchvision_detectors import TorchvisionDetector
from cauchy.models.det.yolov3 import COCO_ANCHORS, YOLOv3, YOLOv3Loss, check_anchors, decode, select_detections
from cauchy.registry import METHODS
from cauchy.schema import defaults
from cauchy.tasks.det import DET

BOX_FIELDS = ("boxes", *geometry.BOX_FIELDS)  # collated as lists of tensors
IMAGE_SIZED_FIELDS = ("masks",)  # per-box fields as large as their image: one tensor per image, not one buffer
DEFAULT_RES = defaults(DET.schema["res"])  # the hypes' own defaults, for methods built without hypes


SIZE_DIVISOR = 32  # a detection batch's sides are padded to multiples of this (the largest stride of the models)


def collate_detection(samples: list[dict[str, Any]], size_divisor: int = SIZE_DIVISOR) -> dict[str, Any]:
    """Images zero-padded (bottom/right) to one size divisible by ``size_divisor``, ``image_sizes``
    [B, 2] (h, w before padding); per-box fields as lists of tensors (instance ``masks`` unpadded,
    [N, h, w] of their own image); ``scale_factor`` and
    ``orig_size`` as [B, 2] tensors; everything else as lists.

    Built to cross from a DataLoader worker cheaply: the image batch is ``batches.stack``'s (in a
    worker's reused shared memory), and each per-box field is one tensor split into per-image views
    (``batches.packed``: pickled as that tensor), so a batch is a handful of shared buffers rather than
    four per image.
    """
    sizes = torch.tensor([list(s["image"].shape[-2:]) for s in samples])
    h, w = (-(-int(v) // size_divisor) * size_divisor for v in sizes.max(dim=0).values)
    channels = samples[0]["image"].shape[0]
    batch: dict[str, Any] = {"image": batches.stack([s["image"] for s in samples], size=(channels, h, w)),
                             "image_sizes": sizes,
                             "scale_factor": torch.tensor([list(s.get("scale_factor", (1.0, 1.0))) for s in samples],
                                                          dtype=torch.float32),
                             "orig_size": torch.tensor([list(s["orig_size"]) for s in samples])}
    for key in samples[0]:
        if key in IMAGE_SIZED_FIELDS:
            batch[key] = [torch.as_tensor(s[key]) for s in samples]
        elif key in BOX_FIELDS:
            batch[key] = batches.packed([torch.as_tensor(s[key]) for s in samples])
        elif key not in batch:
            batch[key] = [s[key] for s in samples]
    return batch


def training_targets(batch: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
    """Boxes, labels (and instance masks when the batch has them) per image, crowd boxes left out
    (they mark regions, not instances)."""
    targets = []
    for i, (boxes, labels) in enumerate(zip(batch["boxes"], batch["labels"])):
        keep = ~batch["iscrowd"][i] if "iscrowd" in batch else torch.ones_like(labels, dtype=torch.bool)
        targets.append({"boxes": boxes[keep].float(), "labels": labels[keep]})
        if "masks" in batch:
            targets[-1]["masks"] = batch["masks"][i][keep]
    return targets


PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def draw_detections(image: np.ndarray, prediction: dict[str, Any], class_names: list[str]) -> np.ndarray:
    """An RGB copy of ``image`` with each box, class name and (when given) score drawn on it."""
    out = np.ascontiguousarray(image).copy()
    labels = prediction["labels"].tolist()
    scores = prediction["scores"].tolist() if "scores" in prediction else [None] * len(labels)
    for box, score, label in zip(prediction["boxes"].tolist(), scores, labels):
        color = PALETTE[label % len(PALETTE)]
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        text = class_names[label] if score is None else f"{class_names[label]} {score:.2f}"
        cv2.putText(out, text, (x1, max(y1 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return out


class DetectionMethod(Method):
    """Subclasses implement ``forward_train`` and ``detect`` (boxes in network-input pixels)."""

    default_evaluator = "coco"
    padded_images = True

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, res: dict[str, Any] | None = None) -> None:
        super().__init__(model, loss)
        res = {**DEFAULT_RES, **(res or {})}
        self.score_thresh, self.nms_iou, self.max_dets = res["score_thresh"], res["nms_iou"], res["max_dets"]

    collate = staticmethod(collate_detection)

    def detect(self, batch: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """``{"boxes" (original-image pixels, xyxy), "scores", "labels"}`` per image."""
        return [self.to_original(d, scale, size)
                for d, scale, size in zip(self.detect(batch), batch["scale_factor"], batch["orig_size"])]

    def to_original(self, detection: dict[str, torch.Tensor], scale_factor: torch.Tensor,
                    orig_size: torch.Tensor) -> dict[str, Any]:
        """One image's detection in its original pixels (``scale_factor`` [sx, sy], ``orig_size`` (h, w))."""
        return {"boxes": to_original(detection["boxes"].float(), scale_factor, orig_size),
                "scores": detection["scores"].float(), "labels": detection["labels"]}

    def describe(self, prediction: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
        """``boxes`` (original pixels, xyxy), ``scores``, ``labels`` and their ``class_names``."""
        labels = prediction["labels"].tolist()
        return {"boxes": prediction["boxes"].tolist(), "scores": prediction["scores"].tolist(), "labels": labels,
                "class_names": [class_names[v] for v in labels]}

    def truth(self, batch: dict[str, Any], index: int) -> dict[str, Any] | None:
        """The reader's boxes (crowd and difficult ones too) and labels, without scores."""
        if "truth" not in batch:
            return None
        truth = batch["truth"][index]
        return {"boxes": torch.as_tensor(truth["boxes"]), "labels": torch.as_tensor(truth["labels"])}

    def draw(self, image: np.ndarray, prediction: dict[str, Any], class_names: list[str]) -> np.ndarray:
        return draw_detections(image, prediction, class_names)

    def test_files(self, evaluator: Evaluator) -> dict[str, Any]:
        """``detections.json``: the detections in COCO's results format (from the first detection
        evaluator that ran), rounded as written."""
        found = next((e for e in evaluator.parts() if isinstance(e, DetectionEvaluator)), None)
        return {rundir.DETECTIONS: rounded_results(found.results())} if found is not None else {}


def no_anchor_settings(method: str, anchor: dict[str, Any] | None) -> None:
    if anchor:
        raise HypesError(f"anchor.{sorted(anchor)[0]}", f"method {method} takes its anchors from network.params "
                                                        "(torchvision's anchor generator); leave anchor empty")


@METHODS.register("faster_rcnn")
@METHODS.register("retinanet")
@METHODS.register("ssd")
class TorchvisionDetection(DetectionMethod):
    """torchvision's Faster R-CNN, RetinaNet and SSD: the model computes its losses from targets."""

    segments_instances = False  # Mask R-CNN's method sets it: the model must have (or lack) a mask head

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, res: dict[str, Any] | None = None,
                 anchor: dict[str, Any] | None = None) -> None:
        if not isinstance(model, TorchvisionDetector):
            raise HypesError("network.model_name", f"this method needs one of torchvision's detectors, got "
                                                   f"{type(model).__name__}")
        if loss is not None:
            raise HypesError("loss.loss_type", "torchvision's detectors compute their own losses; use \"none\"")
        if isinstance(model.net, MaskRCNN) != self.segments_instances:
            raise HypesError("method", "Mask R-CNN models train with method mask_rcnn, and only they do")
        no_anchor_settings("torchvision detection", anchor)
        super().__init__(model, None, res)
        model.set_inference(self.score_thresh, self.nms_iou, self.max_dets)

    @staticmethod
    def images(batch: dict[str, Any]) -> list[torch.Tensor]:
        return [image[:, :h, :w] for image, (h, w) in zip(batch["image"], batch["image_sizes"].tolist())]

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        losses = self.model(self.images(batch), training_targets(batch))
        return {"loss": sum(losses.values()), **{k if k.startswith("loss_") else f"loss_{k}": v
                                                 for k, v in losses.items()}}

    def detect(self, batch: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
        return self.model(self.images(batch))


@METHODS.register("mask_rcnn")
class MaskRCNNInstances(TorchvisionDetection):
    """Instance segmentation with torchvision's Mask R-CNN: detection plus one binary mask per box.

    Trains on the samples' ``masks`` (the COCO reader with ``data.params.masks: true``); predicts
    ``masks`` (bool [N, H, W] in original pixels) beside the boxes, pasting each box's 28x28 mask
    probabilities into the original image and keeping the pixels above ``MASK_THRESHOLD``.
    """

    segments_instances = True
    static_shapes = False  # the mask head convolves each step's positive regions
    MASK_THRESHOLD = 0.5
    default_evaluator = ["coco_segm", "coco"]  # mask AP first: it picks the best checkpoint

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if "masks" not in batch:
            raise HypesError("data.params.masks", "method mask_rcnn trains on instance masks: read them with the "
                                                  "coco format and data.params.masks: true")
        return super().forward_train(batch)

    def to_original(self, detection: dict[str, torch.Tensor], scale_factor: torch.Tensor,
                    orig_size: torch.Tensor) -> dict[str, Any]:
        out = super().to_original(detection, scale_factor, orig_size)
        size = (int(orig_size[0]), int(orig_size[1]))
        out["masks"] = paste_masks_in_image(detection["roi_masks"], out["boxes"], size)[:, 0] > self.MASK_THRESHOLD
        return out

    def describe(self, prediction: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
        """The boxes as detection describes them, and ``masks`` as COCO RLEs (``{"size", "counts"}``)."""
        return {**super().describe(prediction, class_names),
                "masks": [rle.to_json(m) for m in rle.encode(prediction["masks"].cpu().numpy())]}

    def truth(self, batch: dict[str, Any], index: int) -> dict[str, Any] | None:
        """The reader's boxes, labels and masks (decoded), in original pixels."""
        truth = super().truth(batch, index)
        if truth is None or "masks" not in batch["truth"][index]:
            return truth
        h, w = (int(v) for v in batch["orig_size"][index])
        return {**truth, "masks": torch.from_numpy(rle.decode(batch["truth"][index]["masks"], h, w)).bool()}

    def draw(self, image: np.ndarray, prediction: dict[str, Any], class_names: list[str]) -> np.ndarray:
        """Each mask tinted in its box's colour (half transparent) under the boxes."""
        out = np.ascontiguousarray(image).copy()
        for mask, label in zip(prediction["masks"].cpu().numpy(), prediction["labels"].tolist()):
            colour = np.array(PALETTE[label % len(PALETTE)], dtype=np.float32)
            out[mask] = (out[mask] * 0.5 + colour * 0.5).astype(np.uint8)
        return draw_detections(out, prediction, class_names)


@METHODS.register("yolov3")
class YOLOv3Detection(DetectionMethod):
    """YOLOv3 with anchors from the hypes: ``anchor: {"anchors": [[[w, h] x 3] x 3 scales]}`` in
    input pixels (default: the COCO anchors of the paper, for 416-pixel inputs)."""

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, res: dict[str, Any] | None = None,
                 anchor: dict[str, Any] | None = None) -> None:
        if not isinstance(model, YOLOv3):
            raise HypesError("network.model_name", f"method yolov3 needs a YOLOv3 model, got {type(model).__name__}")
        anchor = dict(anchor or {})
        unknown = sorted(set(anchor) - {"anchors"})
        if unknown:
            raise HypesError(f"anchor.{unknown[0]}", "unknown key; valid keys here: anchors")
        try:
            anchors = check_anchors(anchor.get("anchors", COCO_ANCHORS))
        except ValueError as exc:
            raise HypesError("anchor.anchors", str(exc).partition(": ")[2]) from None
        if anchors.shape[1] != model.num_anchors:
            raise HypesError("anchor.anchors", f"{anchors.shape[1]} anchors per scale but the model has "
                                               f"{model.num_anchors}")
        super().__init__(model, loss if loss is not None else YOLOv3Loss(), res)
        self.register_buffer("anchors", anchors, persistent=False)

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = batch["image"]
        return self.loss(self.model(images), training_targets(batch), self.anchors, tuple(images.shape[-2:]))

    def detect(self, batch: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
        return decode(self.model(batch["image"]), self.anchors, score_thresh=self.score_thresh, nms_iou=self.nms_iou,
                      max_dets=self.max_dets)

    def from_exported(self, outputs: list[torch.Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """``outputs``: every anchor's boxes ``[B, N, 4]`` (input pixels) and scores ``[B, N, C]``."""
        found = select_detections(*outputs, score_thresh=self.score_thresh, nms_iou=self.nms_iou, max_dets=self.max_dets)
        return [self.to_original(d, scale, size) for d, scale, size in zip(found, batch["scale_factor"], batch["orig_size"])]
