"""PSPNet (Zhao et al., CVPR 2017): a pyramid pooling module (average pooling to 1x1, 2x2, 3x3 and
6x6 bins, each reduced to a quarter of the width, upsampled and concatenated with the features) on
a dilated ResNet, and the paper's auxiliary FCN head on layer3 with loss weight 0.4."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cauchy.models.backbones.dilated_resnet import DilatedResNet
from cauchy.models.seg.base import DilatedSegmenter, upsample
from cauchy.registry import MODELS


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PyramidPooling(nn.Module):
    """Concatenates the input with its pooled-and-upsampled summaries at each bin size."""

    def __init__(self, channels: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        reduced = channels // len(bins)
        self.stages = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), conv_bn_relu(channels, reduced)) for b in bins)
        self.out_channels = channels + reduced * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, *(upsample(stage(x), x.shape[-2:]) for stage in self.stages)], dim=1)


class PSPHead(nn.Sequential):
    def __init__(self, channels: int, num_classes: int, bins: Sequence[int]) -> None:
        ppm = PyramidPooling(channels, bins)
        super().__init__(ppm, conv_bn_relu(ppm.out_channels, 512, 3), nn.Dropout(0.1), nn.Conv2d(512, num_classes, 1))


@MODELS.register("pspnet")
def pspnet(num_classes: int, backbone: str = "resnet50", output_stride: int = 8, bins: Sequence[int] = (1, 2, 3, 6),
           aux_weight: float = 0.4) -> DilatedSegmenter:
    body = DilatedResNet(backbone, output_stride)
    return DilatedSegmenter(body, PSPHead(body.channels, num_classes, bins), num_classes, aux_weight)
