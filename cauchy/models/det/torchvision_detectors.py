"""torchvision's detectors behind one interface: 0-based labels in and out, thresholds from ``res``.

Built without weights (no hub downloads; pretrained weights come through ``cauchy.weights``) and
with the class count from the data. Cauchy's transforms already resize and normalise, so the
models' own normalisation is switched off (mean 0, std 1); their resize is left to ``min_size`` /
``max_size`` (network.params), which hypes set to the input size so that it does nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torchvision.models.detection as tvd
from torch import nn

from cauchy.registry import MODELS

Target = dict[str, torch.Tensor]


class TorchvisionDetector(nn.Module):
    """Wraps a torchvision detection model; ``background`` is 1 when it reserves label 0 for it."""

    def __init__(self, net: nn.Module, background: int) -> None:
        super().__init__()
        self.net, self.background = net, background

    def forward(self, images: list[torch.Tensor], targets: list[Target] | None = None) -> Any:
        """Training: the model's loss dict. Evaluation: ``[{"boxes", "scores", "labels"}]`` per image."""
        if self.training:
            shifted = [{"boxes": t["boxes"], "labels": t["labels"] + self.background} for t in targets or []]
            return self.net(images, shifted)
        return [{**out, "labels": out["labels"] - self.background} for out in self.net(images)]

    def set_inference(self, score_thresh: float, nms_iou: float, max_dets: int) -> None:
        heads = getattr(self.net, "roi_heads", self.net)  # two-stage models keep them in the RoI heads
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img = score_thresh, nms_iou, max_dets


IDENTITY_NORM = {"image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}

ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], int]] = {  # name: (builder, background labels)
    "fasterrcnn_resnet50_fpn": (tvd.fasterrcnn_resnet50_fpn, 1),
    "fasterrcnn_mobilenet_v3_large_fpn": (tvd.fasterrcnn_mobilenet_v3_large_fpn, 1),
    "retinanet_resnet50_fpn": (tvd.retinanet_resnet50_fpn, 0),
    "ssd300_vgg16": (tvd.ssd300_vgg16, 1),
    "ssdlite320_mobilenet_v3_large": (tvd.ssdlite320_mobilenet_v3_large, 1),
}


def torchvision_detector(arch: str, num_classes: int, **params: Any) -> TorchvisionDetector:
    builder, background = ARCHITECTURES[arch]
    net = builder(weights=None, weights_backbone=None, num_classes=num_classes + background,
                  **{**IDENTITY_NORM, **params})
    return TorchvisionDetector(net, background)


for _arch in ARCHITECTURES:
    MODELS.register(_arch)(partial(torchvision_detector, _arch))
