"""What every heatmap pose model promises the pose methods."""
from __future__ import annotations

import torch
from torch import nn


class HeatmapPoseModel(nn.Module):
    """``forward(images [B,3,H,W]) -> {"heatmaps": [B,K,H/s,W/s]}`` (``s`` = ``stride``, one map per
    keypoint), plus ``"stages"`` (a list of earlier stages' heatmaps of the same shape) for models
    with intermediate supervision; the method adds a loss term for each stage."""

    stride: int = 4

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        raise NotImplementedError


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def output_conv(cin: int, cout: int) -> nn.Conv2d:
    """The 1x1 convolution that gives heatmaps (or part affinity fields), started near zero: the targets
    are almost all zero, and the default initialisation's outputs, of the order of 1 everywhere, cost
    the first hundreds of iterations (in a multi-stage model they also feed the next stage as noise)."""
    out = nn.Conv2d(cin, cout, 1)
    nn.init.normal_(out.weight, std=0.001)
    nn.init.zeros_(out.bias)
    return out
