"""Every pose hypes passes ``run_tasks.py --check``; OpenPose's (small and VGG-19) and Keypoint R-CNN's
(MobileNetV3) train a few iterations on tiny sticks data, are validated with OKS AP, tested (keypoints
in original pixels) and predict (drawn skeletons) through run_tasks.py. Keypoint R-CNN on ResNet-50-FPN
is only checked (its model built on the meta device): it differs from the MobileNetV3 one only by
torchvision's builder, and its run would add 13 s (idle machine) to a suite near its time limit."""
from __future__ import annotations

import glob
import json
import os

import cv2
import pytest

import run_tasks
from cauchy import exitcodes, rundir
from cauchy.visualizer import read_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OPENPOSE = os.path.join(REPO, "hypes", "pose", "openpose_small_sticks.json")
OPENPOSE_VGG19 = os.path.join(REPO, "hypes", "pose", "openpose_vgg19_sticks.json")
KEYPOINT_RCNN = os.path.join(REPO, "hypes", "pose", "keypoint_rcnn_mobilenetv3fpn_sticks.json")
SMALLER = {OPENPOSE: ["network.params.width=16", "train.aug_trans.random_affine.size=[96,96]"],
           OPENPOSE_VGG19: ["network.params.stages=1", "train.aug_trans.random_affine.size=[96,96]",
                            "train.aug_trans.random_affine.scale=[0.8,1.25]"],
           KEYPOINT_RCNN: ["network.params.min_size=96", "network.params.max_size=96",
                           "network.params.rpn_post_nms_top_n_train=100", "network.params.rpn_post_nms_top_n_test=50",
                           "network.params.box_batch_size_per_image=64", "train.aug_trans.random_affine.size=[96,96]"]}


def run(path: str, run_dir: str, data_dir: str, *extra: str) -> int:
    items = [f"data.data_dir={data_dir}", "data.workers=0", "solver.max_iters=3", "train.batch_size=2",
             "val.batch_size=4", "test.batch_size=4", "logging.progress_bar=false", "solver.display_iter=1",
             *SMALLER[path]]
    items += [f"{split}.data_transformer.input_size=[96,96]" for split in ("train", "val", "test")]
    return run_tasks.main(["--hypes", path, "--tmp_dir", run_dir, *[a for i in items for a in ("--set", i)], *extra])


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "hypes", "pose", "*.json"))), ids=os.path.basename)
def test_every_pose_hypes_passes_check(path: str, capsys) -> None:
    """The data decide the keypoint count, so --check cannot ask the OKS evaluator for the data's sigmas
    (it used to build it for two keypoints and fail every pose file)."""
    assert run_tasks.main(["--hypes", path, "--check"]) == exitcodes.OK, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["task"] == "pose"


@pytest.mark.slow
@pytest.mark.parametrize("path", [OPENPOSE, OPENPOSE_VGG19, KEYPOINT_RCNN], ids=["openpose", "openpose_vgg19",
                                                                                 "keypoint_rcnn"])
def test_bottom_up_hypes_train_test_and_predict(path: str, tmp_path, sticks: str) -> None:
    run_dir = str(tmp_path)
    assert run(path, run_dir, sticks) == exitcodes.OK
    events = read_events(os.path.join(run_dir, rundir.METRICS))
    train_names = {e["name"] for e in events if e["phase"] == "train"}
    assert {"loss", "lr"} <= train_names
    assert ({"loss_keypoint"} if path == KEYPOINT_RCNN else {"loss_paf", "loss_heatmap"}) <= train_names
    val = {e["name"]: e["value"] for e in events if e["phase"] == "val"}
    assert {"coco_keypoints/ap", "coco_keypoints/ar", "pck/pck"} <= set(val) and 0.0 <= val["coco_keypoints/ap"] <= 1.0

    assert run(path, run_dir, sticks, "--phase", "test") == exitcodes.OK
    with open(os.path.join(run_dir, rundir.RESULTS)) as fh:
        results = json.load(fh)
    assert "coco_keypoints/ap" in results["metrics"] and len(results["predictions"]) == 4
    with open(os.path.join(sticks, "annotations", "person_keypoints_val.json")) as fh:
        names = json.load(fh)["categories"][0]["keypoints"]
    for prediction in results["predictions"]:
        for person in prediction["people"]:
            assert list(person["keypoints"]) == names
    with open(os.path.join(run_dir, rundir.KEYPOINT_RESULTS)) as fh:
        keypoints = json.load(fh)
    assert all(len(k["keypoints"]) == 3 * len(names) for k in keypoints)

    image = os.path.join(sticks, "images", sorted(os.listdir(os.path.join(sticks, "images")))[0])
    assert run(path, run_dir, sticks, "--phase", "predict", "--input", image) == exitcodes.OK
    drawn = cv2.imread(os.path.join(run_dir, rundir.PREDICTIONS_DIR, os.path.basename(image)))
    assert drawn is not None and drawn.shape == cv2.imread(image).shape  # drawn on the original image
