"""The real digits job as the service tests submit it, and what they read back from its metrics."""
from __future__ import annotations

from typing import Any

DIGITS = "cls/image_classifier_smallcnn_digits.json"


def digits_overrides(data_dir: str, iters: int) -> list[str]:
    """Iterations instead of epochs, evaluation only at the end, a checkpoint every 3 iterations."""
    return [f"data.data_dir={data_dir}", "solver.max_epoch=null", f"solver.max_iters={iters}",
            "solver.lr.metric=iters", f"solver.test_interval={iters}", "solver.display_iter=2",
            "solver.checkpoint.every=3", "logging.progress_bar=false"]


def final_metrics(events: list[dict[str, Any]]) -> tuple[dict[str, float], list[tuple[int, float]]]:
    """From a job's metric events: the last value of each validation metric, and the training losses by step."""
    val = {e["name"]: e["value"] for e in events if e["phase"] == "val"}
    losses = [(e["step"], e["value"]) for e in events if e["phase"] == "train" and e["name"] == "loss"]
    return val, losses
