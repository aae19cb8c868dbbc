"""Keypoint R-CNN (torchvision): people detected as boxes, then each box's keypoints from its own
heatmaps. A two-stage, box-first alternative to the top-down and bottom-up methods, trained on
bottom-up samples (``data.params.samples: "image"``: whole images, every person's box and keypoints).

The model computes its losses from the people's boxes and keypoints (label 0, the person, for
every box). Prediction: ``{"keypoints" [P, K, 3] (x, y, the keypoint's heatmap score through a
sigmoid), "scores" [P] (the box's), "boxes" [P, 4]}`` per image, in original pixels through the
sample's ``affine``. Inference thresholds are the model's own parameters (network.params:
``box_score_thresh``, ``box_nms_thresh``, ``box_detections_per_img``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.detection import KeypointRCNN

from cauchy.hypes import HypesError
from cauchy.methods.det import TorchvisionDetection
from cauchy.methods.pose_bottomup import BottomUpPose, boxes_to_original, to_original
from cauchy.models.det.torchvision_detectors import TorchvisionDetector
from cauchy.registry import METHODS


@METHODS.register("keypoint_rcnn")
class KeypointRCNNMethod(BottomUpPose):
    static_shapes = False  # the keypoint head convolves each step's positive regions

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, target: dict[str, Any] | None = None) -> None:
        if not (isinstance(model, TorchvisionDetector) and isinstance(model.net, KeypointRCNN)):
            raise HypesError("network.model_name", "method keypoint_rcnn needs a Keypoint R-CNN model "
                                                   "(keypointrcnn_mobilenet_v3_large_fpn, keypointrcnn_resnet50_fpn), "
                                                   f"got {type(model).__name__}")
        if loss is not None:
            raise HypesError("loss.loss_type", "Keypoint R-CNN computes its own losses; use \"none\"")
        if target:
            raise HypesError(f"target.{sorted(target)[0]}", "Keypoint R-CNN takes no target settings (its "
                                                            "thresholds are network.params)")
        super().__init__(model, None)

    images = staticmethod(TorchvisionDetection.images)

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        targets = [{"boxes": boxes.float(), "labels": torch.zeros(len(boxes), dtype=torch.int64, device=boxes.device),
                    "keypoints": kps.float()} for boxes, kps in zip(batch["boxes"], batch["keypoints"])]
        losses = self.model(self.images(batch), targets)
        return {"loss": sum(losses.values()), **losses}

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for i, found in enumerate(self.model(self.images(batch))):
            affine = self.affine(batch, i)
            kps = torch.cat([found["keypoints"][..., :2], found["keypoints_scores"].sigmoid()[..., None]], dim=-1)
            out.append({"keypoints": to_original(kps.float().cpu(), affine), "scores": found["scores"].float().cpu(),
                        "boxes": boxes_to_original(found["boxes"].float().cpu(), affine)})
        return out
