"""torchvision's DeepLabV3 (ResNet-50 and MobileNetV3-Large backbones) and LR-ASPP (MobileNetV3
Large or Small; the small CPU model), behind :class:`SegmentationModel`.

Built without weights (no hub downloads; ``network.pretrained`` loads them). DeepLabV3 keeps
torchvision's auxiliary FCN head on the backbone's stride-8/16 stage when ``aux_weight`` > 0 (0.5
in torchvision's reference training); LR-ASPP has none, as in the paper.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision.models as tvm
import torchvision.models.segmentation as tvs
from torch import nn
from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3

from cauchy.models.seg.base import SegmentationModel
from cauchy.registry import MODELS


class TorchvisionSegmenter(SegmentationModel):
    def __init__(self, net: nn.Module, aux_weight: float = 0.0) -> None:
        super().__init__()
        self.net, self.aux_weight = net, aux_weight

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(images)
        return {"out": out["out"], **({"aux": out["aux"]} if self.training and "aux" in out else {})}


def deeplabv3(builder: Callable[..., nn.Module]) -> Callable[..., TorchvisionSegmenter]:
    def build(num_classes: int, aux_weight: float = 0.5) -> TorchvisionSegmenter:
        net = builder(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux_weight > 0)
        return TorchvisionSegmenter(net, aux_weight)

    return build


MODELS.register("deeplabv3_resnet50")(deeplabv3(tvs.deeplabv3_resnet50))
MODELS.register("deeplabv3_mobilenet_v3_large")(deeplabv3(tvs.deeplabv3_mobilenet_v3_large))


@MODELS.register("lraspp")
def lraspp(num_classes: int, backbone: str = "mobilenet_v3_large", dilated: bool = True) -> TorchvisionSegmenter:
    """``backbone``: ``mobilenet_v3_large`` (the paper's) or ``mobilenet_v3_small``; ``dilated=False``
    keeps the last stage strided (output stride 32, not the paper's 16): dilated depthwise convolutions
    take PyTorch's slow generic path on CPU."""
    if backbone not in ("mobilenet_v3_large", "mobilenet_v3_small"):
        raise ValueError(f"backbone: expected mobilenet_v3_large or mobilenet_v3_small, got {backbone!r}")
    return TorchvisionSegmenter(_lraspp_mobilenetv3(getattr(tvm, backbone)(weights=None, dilated=dilated), num_classes))
