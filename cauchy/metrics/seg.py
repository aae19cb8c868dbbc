"""Semantic segmentation evaluator: mIoU, per-class IoU, pixel accuracy, mean class accuracy and
frequency-weighted IoU from one confusion matrix.

The matrix is accumulated on the predictions' device with ``torch.bincount`` over cell indices in
the narrowest integer type that holds them (no per-image copy to the host; one transfer when
``evaluate`` reads it). Rows are ground truth, columns predictions;
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

    def cell_dtype(self) -> torch.dtype:
        """The narrowest integer type that holds every cell index, ``(C + 1) * C`` bins (int16 up to
        181 classes): the per-pixel passes move 2 bytes a pixel, not int64's 8."""
        bins = (self.num_classes + 1) * self.num_classes
        return next(t for t in (torch.int16, torch.int32, torch.int64) if bins <= torch.iinfo(t).max)

    def cells(self, gt: torch.Tensor, pred: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``row * C + prediction`` per pixel, the row being the truth, or ``C`` (an extra row of
        bins that is dropped) for the ignore value and values outside ``[0, C)``: no boolean
        indexing, which would copy each image's kept pixel count to the host."""
        n = self.num_classes
        valid = gt < n
        if gt.is_signed():
            valid &= gt >= 0
        if 0 <= self.ignore_index < n:
            valid &= gt != self.ignore_index
        return pred.to(dtype, copy=True).add_(gt.to(dtype, copy=True).masked_fill_(~valid, n), alpha=n).flatten()

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        """One ``bincount`` per batch over every image's cells, in :meth:`cell_dtype`."""
        n, dtype = self.num_classes, self.cell_dtype()
        cells = [self.cells(torch.as_tensor(gt, device=prediction["mask"].device), prediction["mask"], dtype)
                 for gt, prediction in zip(batch["orig_mask"], predictions)]
        if not cells:
            return
        counts = torch.bincount(torch.cat(cells), minlength=(n + 1) * n)[:n * n]
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
