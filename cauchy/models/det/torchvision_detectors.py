"""torchvision's detectors behind one interface: 0-based labels in and out, thresholds from ``res``.

Built without weights (no hub downloads; pretrained weights come through ``cauchy.weights``) and
with the class count from the data. Cauchy's transforms already resize and normalise, so the
models' own normalisation is switched off (mean 0, std 1); their resize is left to ``min_size`` /
``max_size`` (network.params), which hypes set to the input size so that it does nothing.

Mask R-CNN (ResNet-50 FPN, and a MobileNetV3-Large FPN variant built the way torchvision builds
its MobileNet Faster R-CNN) returns each box's mask as the mask head gives it (``roi_masks``,
[N,1,28,28] probabilities): the method pastes them at the original image's size, so they are
interpolated once, at the resolution they are wanted in.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torchvision.models.detection as tvd
from torch import nn
from torchvision.models import mobilenet_v3_large
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _mobilenet_extractor
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from cauchy.registry import MODELS

Target = dict[str, torch.Tensor]


class TorchvisionDetector(nn.Module):
    """Wraps a torchvision detection model; ``background`` is 1 when it reserves label 0 for it."""

    def __init__(self, net: nn.Module, background: int) -> None:
        super().__init__()
        self.net, self.background = net, background

    def forward(self, images: list[torch.Tensor], targets: list[Target] | None = None) -> Any:
        """Training: the model's loss dict (targets: ``boxes``, ``labels``, Mask R-CNN also ``masks``).
        Evaluation: ``[{"boxes", "scores", "labels"}]`` per image (Mask R-CNN also ``roi_masks``)."""
        if self.training:
            shifted = [{**t, "labels": t["labels"] + self.background} for t in targets or []]
            return self.net(images, shifted)
        return [{**out, "labels": out["labels"] - self.background} for out in self.net(images)]

    def set_inference(self, score_thresh: float, nms_iou: float, max_dets: int) -> None:
        heads = getattr(self.net, "roi_heads", self.net)  # two-stage models keep them in the RoI heads
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img = score_thresh, nms_iou, max_dets


class RoIMaskTransform(GeneralizedRCNNTransform):
    """Mask R-CNN's transform, except that predicted masks stay unpasted, as ``roi_masks``."""

    def postprocess(self, result: list[Target], image_shapes: list[tuple[int, int]],
                    original_image_sizes: list[tuple[int, int]]) -> list[Target]:
        roi_masks = [r.pop("masks") for r in result if "masks" in r]
        result = super().postprocess(result, image_shapes, original_image_sizes)
        for r, masks in zip(result, roi_masks):
            r["roi_masks"] = masks
        return result


def keep_roi_masks(net: tvd.MaskRCNN) -> tvd.MaskRCNN:
    t = net.transform
    net.transform = RoIMaskTransform(t.min_size, t.max_size, t.image_mean, t.image_std, t.size_divisible,
                                     t.fixed_size)
    return net


def maskrcnn_resnet50_fpn(**kwargs: Any) -> tvd.MaskRCNN:
    return keep_roi_masks(tvd.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, **kwargs))


def mobilenet_v3_large_fpn() -> dict[str, Any]:
    """The backbone and anchors of torchvision's MobileNetV3-Large FPN Faster R-CNN (every backbone
    layer trainable, anchors 32-512 on two levels), as keyword arguments of any R-CNN: the small
    two-stage models for CPUs put their heads on it."""
    return {"backbone": _mobilenet_extractor(mobilenet_v3_large(weights=None, norm_layer=nn.BatchNorm2d), True, 6),
            "rpn_anchor_generator": AnchorGenerator(((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3),
            "rpn_score_thresh": 0.05}


def maskrcnn_mobilenet_v3_large_fpn(num_classes: int, **kwargs: Any) -> tvd.MaskRCNN:
    """Mask R-CNN's mask head on :func:`mobilenet_v3_large_fpn`: the small model for CPUs."""
    return keep_roi_masks(tvd.MaskRCNN(num_classes=num_classes, **{**mobilenet_v3_large_fpn(), **kwargs}))


def untrained(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    return partial(builder, weights=None, weights_backbone=None)


IDENTITY_NORM = {"image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}

ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], int]] = {  # name: (builder, background labels)
    "fasterrcnn_resnet50_fpn": (untrained(tvd.fasterrcnn_resnet50_fpn), 1),
    "fasterrcnn_mobilenet_v3_large_fpn": (untrained(tvd.fasterrcnn_mobilenet_v3_large_fpn), 1),
    "retinanet_resnet50_fpn": (untrained(tvd.retinanet_resnet50_fpn), 0),
    "ssd300_vgg16": (untrained(tvd.ssd300_vgg16), 1),
    "ssdlite320_mobilenet_v3_large": (untrained(tvd.ssdlite320_mobilenet_v3_large), 1),
    "maskrcnn_resnet50_fpn": (maskrcnn_resnet50_fpn, 1),
    "maskrcnn_mobilenet_v3_large_fpn": (maskrcnn_mobilenet_v3_large_fpn, 1),
}


def torchvision_detector(arch: str, num_classes: int, **params: Any) -> TorchvisionDetector:
    builder, background = ARCHITECTURES[arch]
    return TorchvisionDetector(builder(num_classes=num_classes + background, **{**IDENTITY_NORM, **params}),
                               background)


for _arch in ARCHITECTURES:
    MODELS.register(_arch)(partial(torchvision_detector, _arch))
