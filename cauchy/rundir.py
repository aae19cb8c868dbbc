"""The run directory's file names and the rules for picking a checkpoint in it (torch-free).

One place for what the task writes and the service, the weights host, scripts and tests read:
a job directory under the service is a run directory with the service's own logs beside it.
"""
from __future__ import annotations

import os
from pathlib import Path

HYPES = "hypes.json"  # the fully resolved hypes
HYPES_UPGRADE = "hypes_upgrade.json"  # an old torchcv file's keys, translated and ignored (cauchy.hypes_upgrade)
METRICS = "metrics.jsonl"  # the durable event record
CHECKPOINTS = "checkpoints"
LATEST = "latest.pth"
BEST = "best.pth"
ITER_GLOB = "iter_*.pth"
RESULTS = "results.json"  # test phase: metrics, tables and one description per image
DETECTIONS = "detections.json"  # det test phase: detections in COCO's results format
KEYPOINT_RESULTS = "keypoints.json"  # pose test phase: people's keypoints in COCO's keypoint results format
PREDICTIONS_DIR = "predictions"  # predict phase: PREDICTIONS plus each image as the method draws it
PREDICTIONS = f"{PREDICTIONS_DIR}/predictions.json"
LATEST_CHECKPOINT = f"{CHECKPOINTS}/{LATEST}"
BEST_CHECKPOINT = f"{CHECKPOINTS}/{BEST}"
ITER_CHECKPOINTS = f"{CHECKPOINTS}/{ITER_GLOB}"


def iter_checkpoint_name(iteration: int) -> str:
    """``iter_0000042.pth``: zero-padded so names sort by iteration."""
    return f"iter_{iteration:07d}.pth"


def last_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest of ``latest.pth`` and the periodic ``iter_*.pth``: where a resume continues from."""
    directory = Path(run_dir)
    candidates = [directory / LATEST_CHECKPOINT, *directory.glob(ITER_CHECKPOINTS)]
    existing = [(path.stat().st_mtime, path) for path in candidates if path.is_file()]
    return max(existing)[1] if existing else None


def model_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint to test, predict or publish with: the best one, else the last one."""
    best = Path(run_dir) / BEST_CHECKPOINT
    return best if best.is_file() else last_checkpoint(run_dir)
