"""ResNet feature extractors for dense prediction: stride-2 stages of layer3/layer4 replaced by
dilation (output stride 8 or 16, as DeepLab, PSPNet and DenseASPP use), returning layer3 (for an
auxiliary head) and layer4. Built without weights; ``network.pretrained`` loads them."""
from __future__ import annotations

import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
DILATION = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}


class DilatedResNet(nn.Module):
    """``forward(x) -> {"aux": layer3, "out": layer4}``; ``aux_channels``/``channels`` are their widths."""

    def __init__(self, name: str = "resnet50", output_stride: int = 8) -> None:
        super().__init__()
        if name not in RESNETS:
            raise ValueError(f"backbone: expected one of {', '.join(RESNETS)}, got {name!r}")
        if output_stride not in DILATION:
            raise ValueError(f"output_stride: expected one of 8, 16, 32, got {output_stride!r}")
        if name in ("resnet18", "resnet34") and output_stride != 32:
            raise ValueError(f"output_stride: {name} (basic blocks) cannot be dilated; use 32 or resnet50/101")
        net = getattr(tvm, name)(weights=None, replace_stride_with_dilation=DILATION[output_stride])
        expansion = 4 if name in ("resnet50", "resnet101") else 1
        self.aux_channels, self.channels = 256 * expansion, 512 * expansion
        self.body = IntermediateLayerGetter(net, return_layers={"layer3": "aux", "layer4": "out"})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.body(x)
