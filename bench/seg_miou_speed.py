"""The seg evaluator (one confusion matrix accumulated on the model's device with torch.bincount)
against per-image numpy references, on the same masks.

    python bench/seg_miou_speed.py [--masks 512] [--size 512] [--classes 21] [--rounds 3] [--device auto|cpu|cuda]
                                   [--threads N]

Masks (ground truth: blocks of random classes with 255-ignore borders; predictions: the truth with
a fifth of the pixels changed) are made once on the device (ground truth uint8, predictions in
``index_dtype``, uint8 up to 255 classes: as a reader and the seg method's ``predict`` leave them)
and fed to the evaluator in batches of 16. Two straightforward per-image numpy references, each
starting from the same device tensors:

- ``numpy_bincount``, the usual confusion-matrix code: per image ``.cpu().numpy()`` of both masks,
  ``gt.astype(np.int64)``, ``keep = gt != 255``, one ``np.bincount(gt[keep] * C + pred[keep],
  minlength=C * C)`` added to an int64 matrix.
- ``numpy_per_class``, the reference of the evaluator's tests: per image and class, intersection
  and union counted with numpy set logic, as hand-written mIoU code does.

Rates are images/s (median of ``--rounds`` alternating rounds after a warm-up); all three must give
the same mIoU (checked). Every side starts from the same tensors, already in memory, and is timed
the same way (wall clock around the whole call, ``evaluate`` included). On the CPU torch runs with
``--threads`` (default: torch's default; the evaluator itself does its passes on one thread there).

The last line is one JSON object: ``ratio`` is the evaluator over the stronger reference
(``strongest``, normally ``numpy_bincount``), ``ratio_vs_per_class`` over the other.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.dirname(os.path.abspath(__file__))]

from rounds import alternate, summary  # noqa: E402

from cauchy.methods.seg import index_dtype  # noqa: E402
from cauchy.metrics.seg import SegmentationEvaluator  # noqa: E402

IGNORE = 255
BATCH = 16


def make_masks(count: int, size: int, classes: int, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    truths, preds = [], []
    for _ in range(count):
        blocks = torch.randint(0, classes, (1, 1, size // 32, size // 32), generator=gen).float()
        gt = torch.nn.functional.interpolate(blocks, size=(size, size), mode="nearest")[0, 0].to(torch.uint8)
        gt[::32, :] = IGNORE
        noise = torch.rand(size, size, generator=gen) < 0.2
        pred = torch.where(noise, torch.randint(0, classes, (size, size), generator=gen), gt.long())
        pred[gt == IGNORE] = 0
        truths.append(gt.to(device))
        preds.append(pred.to(device, index_dtype(classes)))
    return truths, preds


def evaluator_miou(truths: list[torch.Tensor], preds: list[torch.Tensor], classes: int) -> float:
    evaluator = SegmentationEvaluator(classes, ignore_index=IGNORE)
    for start in range(0, len(truths), BATCH):
        evaluator.process({"orig_mask": truths[start:start + BATCH]},
                          [{"mask": p} for p in preds[start:start + BATCH]])
    return evaluator.evaluate().scalars["miou"]


def miou_of(inter: np.ndarray, union: np.ndarray) -> float:
    present = union > 0
    return float((inter[present] / union[present]).mean())


def numpy_per_class(truths: list[torch.Tensor], preds: list[torch.Tensor], classes: int) -> float:
    inter, union = np.zeros(classes), np.zeros(classes)
    for gt_t, pred_t in zip(truths, preds):
        gt, pred = gt_t.cpu().numpy(), pred_t.cpu().numpy()
        keep = gt != IGNORE
        for c in range(classes):
            g, p = (gt == c) & keep, (pred == c) & keep
            inter[c] += np.logical_and(g, p).sum()
            union[c] += np.logical_or(g, p).sum()
    return miou_of(inter, union)


def numpy_bincount(truths: list[torch.Tensor], preds: list[torch.Tensor], classes: int) -> float:
    cm = np.zeros((classes, classes), dtype=np.int64)
    for gt_t, pred_t in zip(truths, preds):
        gt, pred = gt_t.cpu().numpy().astype(np.int64), pred_t.cpu().numpy()
        keep = gt != IGNORE
        cm += np.bincount(gt[keep] * classes + pred[keep], minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(cm)
    return miou_of(tp, cm.sum(0) + cm.sum(1) - tp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=512)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    truths, preds = make_masks(args.masks, args.size, args.classes, device)
    found: dict[str, float] = {}

    def timed(name: str, fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        found[name] = fn(truths, preds, args.classes)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(truths) / (time.perf_counter() - start)

    rates = alternate({"evaluator": lambda: timed("evaluator", evaluator_miou),
                       "numpy_bincount": lambda: timed("numpy_bincount", numpy_bincount),
                       "numpy_per_class": lambda: timed("numpy_per_class", numpy_per_class)}, args.rounds)
    if max(found.values()) - min(found.values()) > 1e-9:
        raise SystemExit(f"the three disagree: {found}")
    print(f"{args.masks} masks of {args.size}x{args.size}, {args.classes} classes, on {device} "
          f"({torch.get_num_threads()} torch threads); mIoU {found['evaluator']:.4f}")
    figures = summary(rates, "images/s", device=str(device), masks=args.masks, size=args.size, classes=args.classes,
                      threads=torch.get_num_threads())
    per_class = float(np.median(rates["evaluator"]) / np.median(rates["numpy_per_class"]))
    print(json.dumps({**figures, "ratio_vs_per_class": round(per_class, 3)}))

if __name__ == "__main__":
    main()
