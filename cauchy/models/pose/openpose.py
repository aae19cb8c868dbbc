"""OpenPose (Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields", 2017):
a backbone's features ``F``, then stages that each predict part affinity fields (``2 * num_limbs``
channels) and joint heatmaps (``num_classes`` channels: one per keypoint), every stage after the
first from ``F`` concatenated with the previous stage's predictions. Every stage is supervised
(intermediate supervision), so the forward pass returns all of them.

Two registered variants:

- ``openpose_vgg19``: the paper's network: VGG-19's first ten convolutions (stride 8) and two more
  to 128 channels, six stages of 3x3 (stage 1) and 7x7 (later stages) convolutions, 128 wide.
- ``openpose_small``: the small CPU model: a conv-BN-ReLU stem that downsamples ``downsample``
  times (stride ``2 ** downsample``, 4 by default, for small images) and fewer, narrower stages with
  batch norm, trained from scratch.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from cauchy.models.pose.base import output_conv
from cauchy.registry import MODELS


def conv(cin: int, cout: int, kernel: int, norm: bool, stride: int = 1) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return [*layers, nn.ReLU(inplace=True)]


def branch(cin: int, cout: int, width: int, kernel: int, depth: int, hidden: int, norm: bool) -> nn.Sequential:
    """``depth`` ``kernel`` x ``kernel`` convolutions, a 1x1 to ``hidden`` channels, a 1x1 to ``cout``."""
    layers = conv(cin, width, kernel, norm)
    for _ in range(depth - 1):
        layers += conv(width, width, kernel, norm)
    layers += conv(width, hidden, 1, norm)
    return nn.Sequential(*layers, output_conv(hidden, cout))


class OpenPose(nn.Module):
    """``forward(images)`` -> one ``(pafs, heatmaps)`` pair per stage, at ``1 / stride`` of the input."""

    def __init__(self, backbone: nn.Module, feature_channels: int, stride: int, num_classes: int, num_limbs: int,
                 stages: int = 6, width: int = 128, first_kernel: int = 3, first_depth: int = 3,
                 kernel: int = 7, depth: int = 5, first_hidden: int = 512, norm: bool = False) -> None:
        super().__init__()
        if num_limbs < 1 or stages < 1:
            raise ValueError(f"openpose: num_limbs and stages must be >= 1, got {num_limbs}, {stages}")
        self.backbone, self.stride, self.num_limbs, self.num_keypoints = backbone, stride, num_limbs, num_classes
        outputs = 2 * num_limbs + num_classes
        self.pafs = nn.ModuleList([branch(feature_channels, 2 * num_limbs, width, first_kernel, first_depth,
                                          first_hidden, norm)])
        self.heatmaps = nn.ModuleList([branch(feature_channels, num_classes, width, first_kernel, first_depth,
                                              first_hidden, norm)])
        for _ in range(stages - 1):
            self.pafs.append(branch(feature_channels + outputs, 2 * num_limbs, width, kernel, depth, width, norm))
            self.heatmaps.append(branch(feature_channels + outputs, num_classes, width, kernel, depth, width, norm))

    def forward(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        features = self.backbone(images)
        x, out = features, []
        for paf_branch, heatmap_branch in zip(self.pafs, self.heatmaps):
            pafs, heatmaps = paf_branch(x), heatmap_branch(x)
            out.append((pafs, heatmaps))
            x = torch.cat([features, pafs, heatmaps], dim=1)
        return out


@MODELS.register("openpose_vgg19")
def openpose_vgg19(num_classes: int, num_limbs: int, stages: int = 6) -> OpenPose:
    """The paper's network (no weights: pretrained ones come through ``network.pretrained``)."""
    # conv1_1 .. conv4_2 with their ReLUs (stride 8, 512 channels), as torchvision's vgg19().features[:23] (its
    # parameter names, for VGG weights) without building and initialising the classifier's 120M parameters
    vgg = make_layers(cfgs["E"])[:23]
    for layer in vgg:
        if isinstance(layer, nn.Conv2d):  # torchvision VGG's initialisation
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    backbone = nn.Sequential(*vgg, *conv(512, 256, 3, False), *conv(256, 128, 3, False))
    return OpenPose(backbone, 128, 8, num_classes, num_limbs, stages=stages)


@MODELS.register("openpose_small")
def openpose_small(num_classes: int, num_limbs: int, stages: int = 2, width: int = 32, downsample: int = 2,
                   stem_widths: tuple[int, ...] = (16, 32, 48), kernel: int = 3) -> OpenPose:
    """``stem_widths``: channels of the stem's blocks (two 3x3 conv-BN-ReLU each; each of the first
    ``downsample`` blocks starts with a stride-2 conv); later stages use ``kernel`` x ``kernel``
    convolutions, three deep."""
    if not 1 <= downsample <= len(stem_widths):
        raise ValueError(f"openpose_small: downsample must be 1..{len(stem_widths)}, got {downsample}")
    layers, cin = [], 3
    for i, w in enumerate(stem_widths):
        layers += conv(cin, w, 3, True, stride=2 if i < downsample else 1) + conv(w, w, 3, True)
        cin = w
    return OpenPose(nn.Sequential(*layers), cin, 2 ** downsample, num_classes, num_limbs, stages=stages, width=width,
                    kernel=kernel, depth=3, first_hidden=2 * width, norm=True)
