"""Convolutional Pose Machines (Wei et al. 2016): a sequence of stages, each predicting every
keypoint's heatmap from shared image features and the previous stage's heatmaps with large
kernels (a growing receptive field), every stage supervised (intermediate supervision).

Features: a small VGG-like trunk at stride 4 (the paper's is stride 8); stage 1 predicts from the
features alone, stages 2..``stages`` from features and the previous heatmaps through five 7x7
convolutions. Output ``heatmaps`` is the last stage's, ``stages`` the earlier ones.
"""
from __future__ import annotations

import torch
from torch import nn

from cauchy.models.pose.base import HeatmapPoseModel, conv_bn_relu, output_conv
from cauchy.registry import MODELS


def stage(cin: int, channels: int, num_classes: int, kernel: int, depth: int) -> nn.Sequential:
    layers = [conv_bn_relu(cin, channels, kernel)] + [conv_bn_relu(channels, channels, kernel) for _ in range(depth - 1)]
    return nn.Sequential(*layers, conv_bn_relu(channels, channels, 1), output_conv(channels, num_classes))


@MODELS.register("cpm")
class CPM(HeatmapPoseModel):
    def __init__(self, num_classes: int, stages: int = 3, channels: int = 64, features: int = 64,
                 kernel: int = 7) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"stages: expected >= 1, got {stages}")
        self.trunk = nn.Sequential(
            conv_bn_relu(3, features // 2), nn.MaxPool2d(2), conv_bn_relu(features // 2, features),
            nn.MaxPool2d(2), conv_bn_relu(features, features), conv_bn_relu(features, features))
        self.stages = nn.ModuleList([stage(features, channels, num_classes, 3, 3)] + [
            stage(features + num_classes, channels, num_classes, kernel, 5) for _ in range(stages - 1)])

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.trunk(images)
        outputs = [self.stages[0](features)]
        for module in self.stages[1:]:
            outputs.append(module(torch.cat([features, outputs[-1]], dim=1)))
        return {"heatmaps": outputs[-1], "stages": outputs[:-1]}
