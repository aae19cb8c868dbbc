"""Inference over a loader feeding an evaluator (reset / process / evaluate), on one rank or several.

With several ranks each one runs its contiguous share of the dataset (``build_loader``), then
the evaluators' accumulated states are gathered and merged on every rank, so every rank holds the
figures of the whole dataset (the same as one process would find) and makes the same decisions with
them (best checkpoint, a plateau schedule's step).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from cauchy import distributed
from cauchy.methods.base import Method
from cauchy.metrics.base import Evaluation, Evaluator


@torch.no_grad()
def inference_on_dataset(method: Method, loader: Iterable[Any], evaluator: Evaluator | None, device: torch.device, *,
                         on_batch: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None
                         ) -> Evaluation:
    """Runs ``method.predict`` on every batch; returns ``evaluator.evaluate()`` over every rank's batches
    (an empty Evaluation without an evaluator, as when predicting on unlabelled images). Restores train
    mode. With several ranks every rank must call it (the states are gathered)."""
    was_training = method.training
    method.eval()
    if evaluator is not None:
        evaluator.reset()
    try:
        for batch in loader:
            batch = method.prepare(batch, device)
            predictions = method.predict(batch)
            if evaluator is not None:
                evaluator.process(batch, predictions)
            if on_batch is not None:
                on_batch(batch, predictions)
    finally:
        method.train(was_training)
    if evaluator is None:
        return Evaluation()
    if distributed.is_distributed():
        evaluator.merge(distributed.all_gather_objects(evaluator.state()))
    return evaluator.evaluate()
