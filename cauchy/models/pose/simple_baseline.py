"""SimpleBaseline (Xiao et al. 2018, "Simple Baselines for Human Pose Estimation and Tracking"):
a ResNet backbone, deconvolutions back to stride 4, a 1x1 conv to one heatmap per keypoint.

``backbone`` is a torchvision ResNet (``resnet18`` ... ``resnet152``: stride 32 and three 4x4
deconvolutions, as in the paper; weights come from ``network.pretrained``) or ``small``, a narrow
four-stage ResNet of basic blocks at stride 16 with two deconvolutions, the CPU model.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision import models
from torchvision.models.resnet import BasicBlock

from cauchy.models.pose.base import HeatmapPoseModel, conv_bn_relu, output_conv
from cauchy.registry import MODELS

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def small_resnet(widths: Sequence[int]) -> tuple[nn.Module, int]:
    """A stem at stride 2, then one basic block per width, the first at stride 1, the others at 2."""
    layers: list[nn.Module] = [conv_bn_relu(3, widths[0], 3, 2)]
    cin = widths[0]
    for i, width in enumerate(widths):
        stride = 1 if i == 0 else 2
        down = None if stride == 1 and cin == width else nn.Sequential(
            nn.Conv2d(cin, width, 1, stride, bias=False), nn.BatchNorm2d(width))
        layers += [BasicBlock(cin, width, stride, down), BasicBlock(width, width)]
        cin = width
    return nn.Sequential(*layers), cin


def resnet_trunk(name: str) -> tuple[nn.Module, int]:
    net = getattr(models, name)(weights=None)
    channels = net.fc.in_features
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4), channels


def deconv_head(cin: int, layers: int, channels: int) -> nn.Sequential:
    """``layers`` 4x4 stride-2 transposed convolutions with BN and ReLU (each doubles the size)."""
    blocks: list[nn.Module] = []
    for _ in range(layers):
        blocks += [nn.ConvTranspose2d(cin, channels, 4, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        cin = channels
    return nn.Sequential(*blocks)


@MODELS.register("simple_baseline")
class SimpleBaseline(HeatmapPoseModel):
    def __init__(self, num_classes: int, backbone: str = "resnet50", deconv_channels: int = 256,
                 widths: Sequence[int] = (32, 64, 128, 256)) -> None:
        """``widths``: the stages of the ``small`` backbone (ignored for torchvision ResNets)."""
        super().__init__()
        if backbone == "small":
            self.backbone, channels = small_resnet(widths)
            backbone_stride = 2 ** len(widths)
        elif backbone in RESNETS:
            self.backbone, channels = resnet_trunk(backbone)
            backbone_stride = 32
        else:
            raise ValueError(f"backbone: expected small or one of {', '.join(RESNETS)}, got {backbone!r}")
        layers = (backbone_stride // 4).bit_length() - 1
        self.head = deconv_head(channels, layers, deconv_channels)
        self.final = output_conv(deconv_channels, num_classes)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmaps": self.final(self.head(self.backbone(images)))}
