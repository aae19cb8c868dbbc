"""DenseASPP (Yang et al., CVPR 2018): atrous convolutions with rates 3, 6, 12, 18 and 24 stacked
densely (each layer sees the input and every earlier layer's output), so the receptive fields of
all rates combine; a 1x1 classifier on the concatenation. The paper builds it on DenseNet and has
no auxiliary head; here it sits on the dilated ResNets shared with PSPNet."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cauchy.models.backbones.dilated_resnet import DilatedResNet
from cauchy.models.seg.base import DilatedSegmenter
from cauchy.models.seg.pspnet import conv_bn_relu
from cauchy.registry import MODELS


class DenseASPPBlock(nn.Module):
    def __init__(self, channels: int, rates: Sequence[int] = (3, 6, 12, 18, 24), reduced: int = 256,
                 growth: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        width = channels
        for rate in rates:
            self.layers.append(nn.Sequential(conv_bn_relu(width, reduced), conv_bn_relu(reduced, growth, 3, rate),
                                             nn.Dropout(dropout)))
            width += growth
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class DenseASPPHead(nn.Sequential):
    def __init__(self, channels: int, num_classes: int, rates: Sequence[int]) -> None:
        block = DenseASPPBlock(channels, rates)
        super().__init__(block, nn.Dropout(0.1), nn.Conv2d(block.out_channels, num_classes, 1))


@MODELS.register("denseaspp")
def denseaspp(num_classes: int, backbone: str = "resnet50", output_stride: int = 8,
              rates: Sequence[int] = (3, 6, 12, 18, 24), aux_weight: float = 0.0) -> DilatedSegmenter:
    body = DilatedResNet(backbone, output_stride)
    return DilatedSegmenter(body, DenseASPPHead(body.channels, num_classes, rates), num_classes, aux_weight)
