"""Every seg hypes file trains two iterations through run_tasks.main on a tiny shapes set; test
writes mIoU and per-class tables, predict writes palette masks and overlays."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
from PIL import Image

import run_tasks
from cauchy import exitcodes
from cauchy.visualizer import read_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))



def semantic(path: str) -> bool:
    """hypes/seg also holds Mask R-CNN's (task det, tested in test_mask_rcnn.py)."""
    with open(path) as fh:
        return json.load(fh)["task"] == "seg"


HYPES = [path for path in sorted(glob.glob(os.path.join(REPO, "hypes", "seg", "*.json"))) if semantic(path)]
SMALL = os.path.join(REPO, "hypes", "seg", "lraspp_mobilenetv3small_shapes.json")


def run(path: str, run_dir, data_dir: str, *extra: str) -> int:
    items = [f"data.data_dir={data_dir}", "data.workers=0", "solver.max_iters=2", "train.batch_size=2",
             "val.batch_size=3", "test.batch_size=3", "logging.progress_bar=false", "solver.display_iter=1"]
    with open(path) as fh:
        hypes = json.load(fh)
    sizing = next(name for name in ("random_crop", "random_affine") if name in hypes["train"]["aug_trans"]["trans_seq"])
    items.append(f"train.aug_trans.{sizing}.size=[48,48]")
    if hypes["test"].get("mode") == "slide":
        items += ["test.crop_size=[32,32]", "test.stride=[24,24]"]
    args = [arg for item in items for arg in ("--set", item)]
    return run_tasks.main(["--hypes", path, "--tmp_dir", str(run_dir), *args, *extra])


@pytest.mark.slow
@pytest.mark.parametrize("path", HYPES, ids=[os.path.basename(p) for p in HYPES])
def test_two_iterations_of_every_seg_hypes(path: str, tmp_path, seg_shapes: str) -> None:
    assert run(path, tmp_path, seg_shapes) == exitcodes.OK
    events = read_events(os.path.join(tmp_path, "metrics.jsonl"))
    assert {"loss", "loss_seg"} <= {e["name"] for e in events if e["phase"] == "train"}
    assert {"miou", "pixel_acc", "mean_acc", "fwiou"} <= {e["name"] for e in events if e["phase"] == "val"}
    with open(path) as fh:
        aux = json.load(fh)["network"]["params"].get("aux_weight", 0) > 0
    assert ("loss_aux" in {e["name"] for e in events}) == aux


@pytest.mark.slow
def test_test_and_predict_phases(tmp_path, seg_shapes: str) -> None:
    assert run(SMALL, tmp_path, seg_shapes) == exitcodes.OK
    for mode in (["--set", "test.mode=whole"], ["--set", "test.mode=slide", "--set", "test.crop_size=[32,32]",
                                                 "--set", "test.stride=[16,16]"]):
        assert run(SMALL, tmp_path, seg_shapes, "--phase", "test", *mode) == exitcodes.OK
        with open(os.path.join(tmp_path, "results.json")) as fh:
            results = json.load(fh)
        assert 0 <= results["metrics"]["miou"] <= 1
        assert set(results["tables"]["per_class"]) == {"background", "circle", "square", "triangle", "star"}
        first = results["predictions"][0]
        image = Image.open(first["path"])
        assert first["size"] == [image.height, image.width]  # the original size, not the input size
        assert sum(first["pixels"].values()) == image.height * image.width
    images = os.path.join(seg_shapes, "JPEGImages")
    assert run(SMALL, tmp_path, seg_shapes, "--phase", "predict", "--input", images) == exitcodes.OK
    out = os.path.join(tmp_path, "predictions")
    mask = Image.open(os.path.join(out, "000000_mask.png"))
    source = Image.open(os.path.join(images, "000000.jpg"))
    assert mask.mode == "P" and mask.size == source.size and np.array(mask).max() < 5
    assert Image.open(os.path.join(out, "000000.jpg")).size == source.size


def test_bad_inference_settings_are_hypes_errors(tmp_path, seg_shapes: str, capsys) -> None:
    assert run(SMALL, tmp_path, seg_shapes, "--set", "test.mode=slide", "--set", "test.crop_size=null") == exitcodes.BAD_INPUT
    assert "test.crop_size: slide mode needs" in capsys.readouterr().err
    mismatch = ["--set", "loss.params.ignore_index=0"]
    assert run(SMALL, tmp_path, seg_shapes, *mismatch) == exitcodes.BAD_INPUT
    assert "loss.params.ignore_index: is 0 but" in capsys.readouterr().err
