"""Semantic segmentation losses on ``(logits [B,C,H,W], target [B,H,W] class indices)``; pixels
equal to ``ignore_index`` take no part. The seg method adds an auxiliary head's loss with the
model's ``aux_weight``."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cauchy.registry import LOSSES


class SegLoss(nn.Module):
    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        if weight is not None and (weight.dim() != 1 or (weight < 0).any()):
            raise ValueError(f"class_weights: expected a list of numbers >= 0, got {class_weights!r}")
        self.register_buffer("class_weights", weight, persistent=False)

    def check(self, logits: torch.Tensor) -> None:
        if self.class_weights is not None and len(self.class_weights) != logits.shape[1]:
            raise ValueError(f"class_weights: {len(self.class_weights)} weights for {logits.shape[1]} classes")


@LOSSES.register("cross_entropy")
class CrossEntropy(SegLoss):
    """Pixel-wise cross entropy, optionally class-weighted (the weighted mean, as torch computes it)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check(logits)
        if not (target != self.ignore_index).any():
            return logits.sum() * 0
        return F.cross_entropy(logits.float(), target, weight=self.class_weights, ignore_index=self.ignore_index)


@LOSSES.register("ohem_cross_entropy")
class OhemCrossEntropy(SegLoss):
    """Online hard example mining (as in PSPNet's and mmseg's training): the mean cross entropy over
    the pixels whose probability of their true class is below ``thresh``, or over the ``min_kept``
    hardest pixels when fewer than that are."""

    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None, thresh: float = 0.7,
                 min_kept: int = 10000) -> None:
        super().__init__(ignore_index, class_weights)
        if not 0 < thresh <= 1 or min_kept < 1:
            raise ValueError(f"expected 0 < thresh <= 1 and min_kept >= 1, got thresh={thresh}, min_kept={min_kept}")
        self.thresh, self.min_kept = thresh, min_kept

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check(logits)
        valid = target != self.ignore_index
        if not valid.any():
            return logits.sum() * 0
        losses = F.cross_entropy(logits.float(), target, ignore_index=self.ignore_index, reduction="none")[valid]
        hard = torch.exp(-losses.detach()) < self.thresh
        if self.class_weights is not None:
            losses = losses * self.class_weights[target[valid]]
        if int(hard.sum()) >= min(self.min_kept, len(losses)):
            return losses[hard].mean()
        return losses.topk(min(self.min_kept, len(losses))).values.mean()


@LOSSES.register("dice")
class DiceLoss(SegLoss):
    """``1 -`` the mean over classes of the soft Dice coefficient between softmax probabilities and the
    one-hot target (ignored pixels left out; ``smooth`` keeps absent classes at coefficient 1);
    ``class_weights`` weigh the classes in that mean."""

    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None, smooth: float = 1.0) -> None:
        super().__init__(ignore_index, class_weights)
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check(logits)
        num_classes = logits.shape[1]
        valid = (target != self.ignore_index).unsqueeze(1)
        probs = logits.float().softmax(dim=1) * valid
        onehot = F.one_hot(torch.where(valid.squeeze(1), target, 0), num_classes).permute(0, 3, 1, 2) * valid
        inter = (probs * onehot).sum(dim=(0, 2, 3))
        total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
        dice = (2 * inter + self.smooth) / (total + self.smooth)
        weights = self.class_weights if self.class_weights is not None else torch.ones_like(dice)
        return 1 - (dice * weights).sum() / weights.sum()
