"""The real tasks as the service tests submit them: the digits job, the synthetic data sets, and what the
tests read back from a job's metrics."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from services.config import REPO_ROOT

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


def synthetic(script: str, out: Path, train: int, val: int, size: int = 64) -> Path:
    """``scripts/<script>/prepare.py`` (``det/shapes``, ``seg/shapes``, ``pose/sticks``) writes a tiny set in ``out``."""
    subprocess.run([sys.executable, f"scripts/{script}/prepare.py", "--out", str(out), "--train", str(train),
                    "--val", str(val), "--size", str(size)], cwd=REPO_ROOT, check=True, capture_output=True)
    return out
