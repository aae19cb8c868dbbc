"""torchvision's classification architectures, registered under their torchvision names.

Built without weights and with a head of ``num_classes`` outputs; pretrained weights come
from ``cauchy.weights`` (no hub downloads), loaded by the model builder.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torchvision.models as tvm
from torch import nn

from cauchy.registry import MODELS

ARCHITECTURES = (
    "resnet18", "resnet34", "resnet50",
    "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "densenet121",
    "shufflenet_v2_x1_0",
    "mobilenet_v3_small", "mobilenet_v3_large",
)


def torchvision_classifier(arch: str, num_classes: int, **params: Any) -> nn.Module:
    return getattr(tvm, arch)(weights=None, num_classes=num_classes, **params)


for _arch in ARCHITECTURES:
    MODELS.register(_arch)(partial(torchvision_classifier, _arch))
