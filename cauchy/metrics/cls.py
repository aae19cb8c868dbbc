"""Classification evaluator: top-1/top-5, per-class precision/recall/F1 and the confusion matrix."""
from __future__ import annotations

from typing import Any

import torch

from cauchy.metrics.base import Evaluation, Evaluator
from cauchy.registry import EVALUATORS


@EVALUATORS.register("cls")
class ClassificationEvaluator(Evaluator):
    """Accumulates a confusion matrix and top-k hits; pure (no I/O)."""

    main_metric = "top1"

    def __init__(self, num_classes: int, class_names: list[str] | None = None, topk: tuple[int, ...] = (1, 5)) -> None:
        self.num_classes = num_classes
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.topk = tuple(k for k in topk if k <= num_classes)
        self.reset()

    def reset(self) -> None:
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        self.hits = dict.fromkeys(self.topk, 0)
        self.count = 0

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        labels = torch.as_tensor(batch["label"]).cpu().long()
        scores = torch.stack([p["scores"] for p in predictions]).cpu()
        ranked = scores.topk(max(self.topk), dim=1).indices
        for k in self.topk:
            self.hits[k] += int((ranked[:, :k] == labels[:, None]).any(dim=1).sum())
        self.confusion += torch.bincount(labels * self.num_classes + ranked[:, 0],
                                         minlength=self.num_classes ** 2).view(self.num_classes, -1)
        self.count += len(labels)

    def state(self) -> dict[str, Any]:
        return {"confusion": self.confusion, "hits": self.hits, "count": self.count}

    def merge(self, states: list[dict[str, Any]]) -> None:
        self.confusion = sum((s["confusion"] for s in states), torch.zeros_like(self.confusion))
        self.hits = {k: sum(s["hits"][k] for s in states) for k in self.topk}
        self.count = sum(s["count"] for s in states)

    def evaluate(self) -> Evaluation:
        cm = self.confusion.double()
        tp = cm.diag()
        precision = torch.where(cm.sum(0) > 0, tp / cm.sum(0).clamp(min=1), torch.zeros_like(tp))
        recall = torch.where(cm.sum(1) > 0, tp / cm.sum(1).clamp(min=1), torch.zeros_like(tp))
        f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12),
                         torch.zeros_like(tp))
        scalars = {f"top{k}": self.hits[k] / max(self.count, 1) for k in self.topk}
        scalars.update(mean_precision=float(precision.mean()), mean_recall=float(recall.mean()),
                       mean_f1=float(f1.mean()), count=float(self.count))
        per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                     for name, p, r, f, s in zip(self.class_names, precision, recall, f1, cm.sum(1))}
        return Evaluation(scalars, {"per_class": per_class, "confusion_matrix": self.confusion.tolist()})
