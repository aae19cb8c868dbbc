"""Image classification: labels as targets, cross-entropy, softmax scores."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from cauchy.methods.base import Method
from cauchy.registry import LOSSES, METHODS

TOP_K = 5  # classes a prediction lists, best first


@LOSSES.register("ce")
def cross_entropy(label_smoothing: float = 0.0, weight: list[float] | None = None) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing,
                               weight=torch.tensor(weight) if weight is not None else None)


def draw_label(image: np.ndarray, text: str, color: tuple[int, int, int] = (230, 25, 75)) -> np.ndarray:
    """An RGB copy of ``image`` with ``text`` in its top-left corner."""
    out = np.ascontiguousarray(image).copy()
    scale = max(0.4, min(out.shape[:2]) / 300)
    cv2.putText(out, text, (3, int(14 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return out


@METHODS.register("image_classifier")
class ImageClassifier(Method):
    default_evaluator = "cls"

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

    def describe(self, prediction: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
        """``scores`` (all classes), ``label``, its ``class_name`` and ``score``, and the ``top`` TOP_K classes
        (``{"label", "class_name", "score"}``, best first)."""
        scores, label = prediction["scores"].tolist(), prediction["label"]
        best = sorted(range(len(scores)), key=lambda i: -scores[i])[:TOP_K]
        return {"scores": scores, "label": label, "class_name": class_names[label], "score": scores[label],
                "top": [{"label": i, "class_name": class_names[i], "score": scores[i]} for i in best]}

    def truth(self, batch: dict[str, Any], index: int) -> dict[str, Any] | None:
        return {"label": int(batch["label"][index])} if "label" in batch else None

    def draw(self, image: np.ndarray, prediction: dict[str, Any], class_names: list[str]) -> np.ndarray:
        text = class_names[prediction["label"]]
        if "scores" in prediction:
            text += f" {float(prediction['scores'][prediction['label']]):.2f}"
        return draw_label(image, text)
