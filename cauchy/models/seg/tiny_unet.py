"""A tiny U-Net, the small CPU seg model, trained from scratch on two CPU threads.

Four encoder stages of two 3x3 conv-BN-ReLU, each starting with a stride-2 convolution (the last
stage's second conv dilated by 2 for context), and a decoder that upsamples bilinearly and fuses
each skip connection with one 3x3 conv, ending at half the input's resolution (logits upsampled):
dense convolutions with few channels, which the CPU runs fast.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cauchy.models.seg.base import SegmentationModel, upsample
from cauchy.registry import MODELS


def conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyUNet(SegmentationModel):
    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 64, 96)) -> None:
        super().__init__()
        stages, cin = [], 3
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            stages.append(nn.Sequential(conv_bn_relu(cin, width, stride=2),
                                        conv_bn_relu(width, width, dilation=2 if last else 1)))
            cin = width
        self.encoder = nn.ModuleList(stages)
        self.decoder = nn.ModuleList(conv_bn_relu(deep + skip, skip)
                                     for deep, skip in zip(widths[:0:-1], widths[-2::-1]))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        skips, x = [], images
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for fuse, skip in zip(self.decoder, skips[-2::-1]):
            x = fuse(torch.cat([upsample(x, skip.shape[-2:]), skip], dim=1))
        return {"out": upsample(self.classifier(x), images.shape[-2:])}


@MODELS.register("tiny_unet")
def tiny_unet(num_classes: int, widths: Sequence[int] = (16, 32, 64, 96)) -> TinyUNet:
    """``widths``: channels of the encoder stages (each after the first halves the resolution)."""
    return TinyUNet(num_classes, widths)
