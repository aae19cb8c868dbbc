"""Semantic segmentation evaluator: mIoU, per-class IoU, pixel accuracy, mean class accuracy and
frequency-weighted IoU from one confusion matrix.

The matrix is accumulated on the predictions' device with ``torch.bincount`` (no per-image copy to
the host; one transfer when ``evaluate`` reads it). Rows are ground truth, columns predictions;
pixels at ``ignore_index`` are left out. A class absent from both ground truth and predictions has
no IoU (it is left out of the means and reported as null), as mmseg and the Cityscapes scripts do.
"""
from __future__ import annotations

from typing import Any

import torch

from cauchy.metrics.base import Evaluation, Evaluator
from cauchy.registry import EVALUATORS


def scores_from_confusion(cm: torch.Tensor) -> dict[str, Any]:
    """The metrics of a ``[C, C]`` confusion matrix (float64 arithmetic)."""
    cm = cm.double()
    tp, gt, pred = cm.diag(), cm.sum(1), cm.sum(0)
    union = gt + pred - tp
    total = cm.sum()
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, float("nan")))
    present = ~iou.isnan()
    freq = gt / total.clamp(min=1)
    return {
        "miou": float(iou[present].mean()) if present.any() else 0.0,
        "pixel_acc": float(tp.sum() / total) if total > 0 else 0.0,
        "mean_acc": float(acc[~acc.isnan()].mean()) if (~acc.isnan()).any() else 0.0,
        "fwiou": float((freq[present] * iou[present]).sum()),
        "iou": [None if v != v else v for v in iou.tolist()],
        "acc": [None if v != v else v for v in acc.tolist()],
    }


@EVALUATORS.register("seg")
class SegmentationEvaluator(Evaluator):
    """Compares each prediction's ``mask`` with the batch's ``orig_mask`` (both at the original size)."""

    main_metric = "miou"

    def __init__(self, num_classes: int, class_names: list[str] | None = None, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self.confusion: torch.Tensor | None = None
        self.count = 0

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        """One ``bincount`` per batch over every image's ``truth * C + prediction`` cell index, with
        ignored (and out-of-range) pixels sent to an extra bin that is dropped: no boolean indexing,
        which would copy each image's pixel count to the host."""
        n = self.num_classes
        cells = []
        for gt, prediction in zip(batch["orig_mask"], predictions):
            pred = prediction["mask"]
            gt = torch.as_tensor(gt, device=pred.device).long()
            valid = (gt != self.ignore_index) & (gt >= 0) & (gt < n)
            cells.append(torch.where(valid, gt * n + pred.long(), n * n).flatten())
        if not cells:
            return
        counts = torch.bincount(torch.cat(cells), minlength=n * n + 1)[:n * n]
        self.confusion = counts if self.confusion is None else self.confusion + counts
        self.count += len(cells)

    def evaluate(self) -> Evaluation:
        n = self.num_classes
        cm = (self.confusion if self.confusion is not None else torch.zeros(n * n, dtype=torch.long)).view(n, n).cpu()
        scores = scores_from_confusion(cm)
        per_class = {name: {"iou": iou, "acc": acc, "pixels": int(pixels)}
                     for name, iou, acc, pixels in zip(self.class_names, scores.pop("iou"), scores.pop("acc"), cm.sum(1))}
        return Evaluation({**scores, "count": float(self.count)},
                          {"per_class": per_class, "confusion_matrix": cm.tolist()})
