"""Every pose hypes file trains two iterations through run_tasks.main on a tiny sticks set; test
writes OKS AP, PCK and keypoints.json; predict writes skeleton overlays and predictions.json in
original pixels; a checkpoint keeps the skeleton for predicting on unannotated images."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import torch

import run_tasks
from cauchy import exitcodes, rundir
from cauchy.datasets.io import read_image
from cauchy.datasets.pose.transforms import person_window
from cauchy.visualizer import read_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
def top_down(path: str) -> bool:
    """hypes/pose also holds the bottom-up methods' (tested in their own files)."""
    with open(path) as fh:
        return json.load(fh)["method"] == "top_down_pose"


HYPES = [path for path in sorted(glob.glob(os.path.join(REPO, "hypes", "pose", "*.json"))) if top_down(path)]
SMALL = os.path.join(REPO, "hypes", "pose", "simple_baseline_small_sticks.json")


def run(path: str, run_dir, data_dir: str, *extra: str) -> int:
    items = [f"data.data_dir={data_dir}", "data.workers=0", "solver.max_iters=2", "train.batch_size=3",
             "val.batch_size=4", "test.batch_size=4", "logging.progress_bar=false", "solver.display_iter=1"]
    args = [arg for item in items for arg in ("--set", item)]
    return run_tasks.main(["--hypes", path, "--tmp_dir", str(run_dir), *args, *extra])


@pytest.mark.slow
@pytest.mark.parametrize("path", HYPES, ids=os.path.basename)
def test_each_pose_hypes_trains_and_tests(path, sticks, tmp_path):
    assert run(path, tmp_path, sticks) == exitcodes.OK
    names = {(e["phase"], e["name"]) for e in read_events(tmp_path / rundir.METRICS)}
    assert {("train", "loss"), ("train", "loss_heatmap"), ("val", "coco_keypoints/ap"), ("val", "pck/pck")} <= names
    if "cpm" in path:
        assert ("train", "loss_stage1") in names and ("train", "loss_stage2") in names
    assert run(path, tmp_path, sticks, "--phase", "test") == exitcodes.OK
    results = json.loads((tmp_path / rundir.RESULTS).read_text())
    assert 0 <= results["metrics"]["coco_keypoints/ap"] <= 1 and 0 <= results["metrics"]["pck/pck"] <= 1
    people = results["predictions"][0]["people"]
    assert len(people) == 1 and set(people[0]["keypoints"]) >= {"head", "left_wrist", "right_ankle"}
    found = json.loads((tmp_path / rundir.KEYPOINT_RESULTS).read_text())
    assert len(found) == len(results["predictions"]) and len(found[0]["keypoints"]) == 42


@pytest.mark.slow
def test_predict_draws_skeletons_in_original_pixels(sticks_single, tmp_path):
    assert run(SMALL, tmp_path, sticks_single) == exitcodes.OK
    state = torch.load(tmp_path / rundir.LATEST_CHECKPOINT, weights_only=True)
    assert state["metadata"]["keypoint_names"][0] == "head" and len(state["metadata"]["skeleton"]) == 14
    images = os.path.join(sticks_single, "images")
    assert run(SMALL, tmp_path, sticks_single, "--phase", "predict", "--input", images) == exitcodes.OK
    found = json.loads((tmp_path / rundir.PREDICTIONS).read_text())["predictions"]
    assert len(found) == len(os.listdir(images))
    first = found[0]
    height, width = read_image(first["path"]).shape[:2]
    xy = np.array([v[:2] for v in first["people"][0]["keypoints"].values()])
    cx, cy, w, h = person_window((0, 0, width, height), 64 / 96, 1.25)  # the input window, in original pixels
    assert xy.shape == (14, 2) and (abs(xy[:, 0] - cx) <= w / 2).all() and (abs(xy[:, 1] - cy) <= h / 2).all()
    drawn = read_image(os.path.join(tmp_path, rundir.PREDICTIONS_DIR, os.path.basename(first["path"])))
    assert drawn.shape == (height, width, 3)


def test_bad_target_key_is_named(sticks, tmp_path, capsys):
    assert run(SMALL, tmp_path, sticks, "--set", "target.sigmaa=2") == exitcodes.BAD_INPUT
    assert "error: target.sigmaa: unknown key" in capsys.readouterr().err
