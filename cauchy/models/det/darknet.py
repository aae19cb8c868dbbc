"""Darknet-53 (YOLOv3's backbone) and slimmer variants of it for CPUs."""
from __future__ import annotations

import torch
from torch import nn


def conv_bn_leaky(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.1, inplace=True))


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_leaky(channels, channels // 2, 1), conv_bn_leaky(channels // 2, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Darknet(nn.Module):
    """A stem and five stride-2 stages of residual blocks; returns the stride 8, 16 and 32 features.

    ``width=32, depths=(1, 2, 8, 8, 4)`` is Darknet-53; smaller values give a CPU-sized network of the
    same shape.
    """

    def __init__(self, width: int = 32, depths: tuple[int, ...] = (1, 2, 8, 8, 4)) -> None:
        super().__init__()
        if len(depths) != 5:
            raise ValueError(f"depths: expected 5 stage depths, got {list(depths)}")
        self.stem = conv_bn_leaky(3, width, 3)
        stages, channels = [], width
        for depth in depths:
            stages.append(nn.Sequential(conv_bn_leaky(channels, channels * 2, 3, 2),
                                        *[Residual(channels * 2) for _ in range(depth)]))
            channels *= 2
        self.stages = nn.ModuleList(stages)
        self.out_channels = (width * 8, width * 16, width * 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 2:
                features.append(x)
        return features
