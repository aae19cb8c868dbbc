"""A small CNN for tiny images (8x8 to 32x32), such as the digits demo: trains in seconds on a CPU."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from cauchy.registry import MODELS

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "group": lambda channels: nn.GroupNorm(math.gcd(8, channels), channels),
}
"""Normalisation layers by name. ``group`` normalises each image alone, so a step does not depend on how
its batch is split (between ranks, say: docs/distributed.md); ``batch`` normalises over each rank's share."""


def conv_bn(cin: int, cout: int, norm: str = "batch") -> nn.Sequential:
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {', '.join(NORMS)}, got {norm!r}")
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), NORMS[norm](cout), nn.ReLU(inplace=True))


@MODELS.register("small_cnn")
class SmallCNN(nn.Module):
    def __init__(self, num_classes: int, width: int = 32, dropout: float = 0.1, norm: str = "batch") -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, width, norm), conv_bn(width, width, norm), nn.MaxPool2d(2),
            conv_bn(width, 2 * width, norm), conv_bn(2 * width, 2 * width, norm),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
