"""Semantic segmentation evaluator: mIoU, per-class IoU, pixel accuracy, mean class accuracy and
frequency-weighted IoU from one confusion matrix.

The matrix is accumulated on the predictions' device with ``torch.bincount`` over cell indices in
the narrowest integer type that holds them (no per-image copy to the host; one transfer when
``evaluate`` reads it). Rows are ground truth, columns predictions;
pixels at ``ignore_index`` are left out. A class absent from both ground truth and predictions has
no IoU (it is left out of the means and reported as null), as mmseg and the Cityscapes scripts do.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """Torch's intra-op threads set to one while the block runs, on the CPU. The evaluator's passes
    are memory-bound copies over a few MB, which threads barely speed up; on a loaded machine each
    threaded pass waits for its slowest thread (measured on 2 busy cores: 26-47 ms an image with 2
    threads, 3.6-4.8 with one)."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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

    def rows(self, truths: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """The batch's ground truth as one flat tensor of matrix rows: the class, or ``C`` (an extra
        row of bins that is dropped) for the ignore value and values outside ``[0, C)``. uint8 truth
        with the ignore value outside the classes (the readers' masks) takes one copy and one in-place
        clamp on 1 byte a pixel; other truth one mask. No boolean indexing, which would copy each
        image's kept pixel count to the host."""
        n = self.num_classes
        flat = torch.cat([gt.reshape(-1) for gt in truths])
        if flat.dtype == torch.uint8 and not 0 <= self.ignore_index < n:
            return flat.clamp_(max=n) if n < 255 else flat.to(dtype)
        top = torch.iinfo(flat.dtype).max  # a bound past it would wrap when compared in flat's type
        valid = flat < n if n <= top else torch.ones_like(flat, dtype=torch.bool)
        if flat.is_signed():
            valid &= flat >= 0
        if 0 <= self.ignore_index < n and self.ignore_index <= top:
            valid &= flat != self.ignore_index
        return flat.to(dtype).masked_fill_(~valid, n)

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        """One ``bincount`` per batch over ``row * C + prediction``, every image's pixels at once: the
        predictions are copied (whatever their integer type) straight into one :meth:`cell_dtype`
        buffer, the rows added in place. A handful of operations per batch rather than per image,
        on one thread on the CPU (:func:`one_thread_on_cpu`)."""
        if not predictions:
            return
        n, dtype = self.num_classes, self.cell_dtype()
        preds = [prediction["mask"].reshape(-1) for prediction in predictions]
        device = preds[0].device
        with one_thread_on_cpu(device):
            rows = self.rows([torch.as_tensor(gt, device=device) for gt in batch["orig_mask"]], dtype)
            cells = torch.cat(preds, out=torch.empty(rows.numel(), dtype=dtype, device=device)).add_(rows, alpha=n)
            counts = torch.bincount(cells, minlength=(n + 1) * n)[:n * n]
        self.confusion = counts if self.confusion is None else self.confusion + counts
        self.count += len(preds)

    def state(self) -> dict[str, Any]:
        return {"confusion": None if self.confusion is None else self.confusion.cpu(), "count": self.count}

    def merge(self, states: list[dict[str, Any]]) -> None:
        found = [s["confusion"] for s in states if s["confusion"] is not None]
        self.confusion = sum(found[1:], found[0]) if found else None
        self.count = sum(s["count"] for s in states)

    def evaluate(self) -> Evaluation:
        n = self.num_classes
        cm = (self.confusion if self.confusion is not None else torch.zeros(n * n, dtype=torch.long)).view(n, n).cpu()
        scores = scores_from_confusion(cm)
        per_class = {name: {"iou": iou, "acc": acc, "pixels": int(pixels)}
                     for name, iou, acc, pixels in zip(self.class_names, scores.pop("iou"), scores.pop("acc"), cm.sum(1))}
        return Evaluation({**scores, "count": float(self.count)},
                          {"per_class": per_class, "confusion_matrix": cm.tolist()})
