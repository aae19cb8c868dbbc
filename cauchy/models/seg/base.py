"""What every semantic segmentation model promises the seg method."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationModel(nn.Module):
    """``forward(images [B,3,H,W]) -> {"out": logits [B,C,H,W]}`` at the input's size, plus ``"aux"``
    (same shape) in training when the model has an auxiliary head; ``aux_weight`` is that head's
    share of the loss (0 without one)."""

    aux_weight: float = 0.0

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def fcn_head(in_channels: int, num_classes: int, dropout: float = 0.1) -> nn.Sequential:
    """The auxiliary head of PSPNet/DeepLab: 3x3 conv to a quarter of the width, BN, ReLU, 1x1 to classes."""
    mid = in_channels // 4
    return nn.Sequential(nn.Conv2d(in_channels, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Conv2d(mid, num_classes, 1))


def upsample(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


class DilatedSegmenter(SegmentationModel):
    """A dilated ResNet, a context ``head`` on layer4 and, when ``aux_weight`` > 0, an FCN head on layer3."""

    def __init__(self, backbone: nn.Module, head: nn.Module, num_classes: int, aux_weight: float) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.aux_weight = aux_weight
        self.aux_head = fcn_head(backbone.aux_channels, num_classes) if aux_weight > 0 else None

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        out = {"out": upsample(self.head(features["out"]), images.shape[-2:])}
        if self.aux_head is not None and self.training:
            out["aux"] = upsample(self.aux_head(features["aux"]), images.shape[-2:])
        return out
