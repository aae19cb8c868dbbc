"""Image classification: labels as targets, cross-entropy, softmax scores."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cauchy.methods.base import Method
from cauchy.registry import LOSSES, METHODS


@LOSSES.register("ce")
def cross_entropy(label_smoothing: float = 0.0, weight: list[float] | None = None) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing,
                               weight=torch.tensor(weight) if weight is not None else None)


@METHODS.register("image_classifier")
class ImageClassifier(Method):
    def __init__(self, model: nn.Module, loss: nn.Module | None = None) -> None:
        super().__init__(model, loss if loss is not None else nn.CrossEntropyLoss())

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        logits = self.model(batch["image"])
        loss = self.loss(logits, batch["label"])
        return {"loss": loss, "loss_ce": loss}

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        scores = self.model(batch["image"]).float().softmax(dim=1)
        return [{"scores": s, "label": int(s.argmax())} for s in scores]
