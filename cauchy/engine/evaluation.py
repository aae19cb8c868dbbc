"""Inference over a loader feeding an evaluator (reset / process / evaluate)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from cauchy.methods.base import Method
from cauchy.metrics.base import Evaluation, Evaluator


@torch.no_grad()
def inference_on_dataset(method: Method, loader: Iterable[Any], evaluator: Evaluator | None, device: torch.device, *,
                         on_batch: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None
                         ) -> Evaluation:
    """Runs ``method.predict`` on every batch; returns ``evaluator.evaluate()`` (an empty Evaluation
    without one, as when predicting on unlabelled images). Restores train mode."""
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
    return evaluator.evaluate() if evaluator is not None else Evaluation()
