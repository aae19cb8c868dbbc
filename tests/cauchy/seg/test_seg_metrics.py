"""The confusion-matrix evaluator against an independent per-image numpy computation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cauchy.metrics.seg import SegmentationEvaluator


def numpy_reference(pairs: list[tuple[np.ndarray, np.ndarray]], n: int, ignore: int) -> dict[str, object]:
    """Per class: intersections and unions summed over images with set logic, no confusion matrix."""
    inter, union, gt_px, correct, total = np.zeros(n), np.zeros(n), np.zeros(n), 0, 0
    for gt, pred in pairs:
        keep = gt != ignore
        g, p = gt[keep], pred[keep]
        correct += int((g == p).sum())
        total += g.size
        for c in range(n):
            inter[c] += np.logical_and(g == c, p == c).sum()
            union[c] += np.logical_or(g == c, p == c).sum()
            gt_px[c] += (g == c).sum()
    present = union > 0
    iou = np.where(present, inter / np.maximum(union, 1), np.nan)
    acc = np.where(gt_px > 0, inter / np.maximum(gt_px, 1), np.nan)
    return {"miou": np.nanmean(iou), "pixel_acc": correct / total, "mean_acc": np.nanmean(acc),
            "fwiou": float(np.nansum(gt_px / total * iou)), "iou": iou}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_on_random_masks(seed: int) -> None:
    gen = np.random.default_rng(seed)
    n, ignore = 6, 255
    pairs = []
    for _ in range(7):
        h, w = (int(v) for v in gen.integers(5, 40, size=2))
        gt = gen.integers(0, n - 1, size=(h, w))  # the last class never appears in ground truth
        gt[gen.random((h, w)) < 0.1] = ignore
        pred = np.where(gen.random((h, w)) < 0.6, gt, gen.integers(0, n - 2, size=(h, w)))
        pred[pred == ignore] = 0
        pairs.append((gt, pred))
    evaluator = SegmentationEvaluator(n, ignore_index=ignore)
    for start in range(0, 7, 3):  # batches of up to three images
        chunk = pairs[start:start + 3]
        evaluator.process({"orig_mask": [torch.from_numpy(g.astype(np.uint8)) for g, _ in chunk]},
                          [{"mask": torch.from_numpy(p)} for _, p in chunk])
    result, want = evaluator.evaluate(), numpy_reference(pairs, n, ignore)
    for key in ("miou", "pixel_acc", "mean_acc", "fwiou"):
        assert result.scalars[key] == pytest.approx(want[key], abs=1e-12), key
    ious = [result.tables["per_class"][str(c)]["iou"] for c in range(n)]
    assert ious[-1] is None  # neither in ground truth nor predicted
    np.testing.assert_allclose([np.nan if v is None else v for v in ious], want["iou"], atol=1e-12)
    assert result.scalars["count"] == 7 and len(result.tables["confusion_matrix"]) == n


def test_perfect_and_empty() -> None:
    evaluator = SegmentationEvaluator(3)
    gt = torch.tensor([[0, 1], [2, 255]])
    evaluator.process({"orig_mask": [gt]}, [{"mask": torch.tensor([[0, 1], [2, 1]])}])
    assert evaluator.evaluate().scalars["miou"] == 1.0
    evaluator.reset()
    assert evaluator.evaluate().scalars["miou"] == 0.0


def test_signed_truth_and_ignore_inside_the_class_range() -> None:
    """int64 ground truth with negative and too-large values, and an ignore index that is a class id:
    all three kinds of pixel are left out, as the numpy reference leaves them."""
    gen = np.random.default_rng(3)
    n, ignore = 4, 0
    gt = gen.integers(-2, n + 2, size=(9, 11))
    pred = gen.integers(0, n, size=(9, 11))
    evaluator = SegmentationEvaluator(n, ignore_index=ignore)
    evaluator.process({"orig_mask": [torch.from_numpy(gt)]}, [{"mask": torch.from_numpy(pred)}])
    keep = (gt >= 0) & (gt < n) & (gt != ignore)
    want = np.bincount(gt[keep] * n + pred[keep], minlength=n * n).reshape(n, n)
    assert evaluator.evaluate().tables["confusion_matrix"] == want.tolist()


@pytest.mark.parametrize("n, ignore", [(5, 255), (200, 255), (300, 255), (300, 999)])
def test_uint8_truth_any_prediction_type_and_wide_cells(n: int, ignore: int) -> None:
    """uint8 truth with values past the classes (dropped like the ignore value), predictions in uint8,
    int32 and int64, class counts whose cells need int16 or int32, and an ignore value inside or
    outside the uint8 range; torch's thread count is the caller's again afterwards."""
    gen = np.random.default_rng(n)
    truths = [gen.integers(0, 256, size=(13, 17)).astype(np.uint8) for _ in range(3)]
    preds = [gen.integers(0, min(n, 256), size=(13, 17)) for _ in range(3)]
    evaluator = SegmentationEvaluator(n, ignore_index=ignore)
    threads = torch.get_num_threads()
    evaluator.process({"orig_mask": [torch.from_numpy(g) for g in truths]},
                      [{"mask": torch.from_numpy(p).to(dtype)}
                       for p, dtype in zip(preds, (torch.uint8, torch.int32, torch.int64))])
    assert torch.get_num_threads() == threads
    gt, pred = np.concatenate([g.ravel() for g in truths]).astype(np.int64), np.concatenate([p.ravel() for p in preds])
    keep = (gt < n) & (gt != ignore)
    want = np.bincount(gt[keep] * n + pred[keep], minlength=n * n).reshape(n, n)
    assert np.array_equal(np.array(evaluator.evaluate().tables["confusion_matrix"]), want)
