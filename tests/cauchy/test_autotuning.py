"""cuDNN autotuning follows the method: on for fixed shapes, off for R-CNN heads (a new shape each step) and for
deterministic runs."""
from __future__ import annotations

import pytest
import torch

import cauchy.methods  # noqa: F401  (registers the methods)
from cauchy.registry import METHODS
from cauchy.runner import tune_convolutions


@pytest.fixture(autouse=True)
def restore_benchmark():
    before = torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.benchmark = before


@pytest.mark.parametrize("name, tuned", [("image_classifier", True), ("faster_rcnn", True), ("yolov3", True),
                                         ("mask_rcnn", False), ("keypoint_rcnn", False)])
def test_autotuning_is_off_where_shapes_change_every_step(name: str, tuned: bool) -> None:
    method = METHODS.get(name)
    tune_convolutions({"details": {"deterministic": False}}, method)
    assert torch.backends.cudnn.benchmark is tuned
    tune_convolutions({"details": {"deterministic": True}}, method)
    assert torch.backends.cudnn.benchmark is False
