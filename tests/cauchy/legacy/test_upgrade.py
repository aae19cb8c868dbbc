"""The torchcv translation: every fixture (each key family torchcv's published cls/det/seg/pose hypes
use) is recognised and translated with nothing left unreported; Cauchy's own files pass untouched."""
from __future__ import annotations

import glob
import json
import os

import pytest

from cauchy.hypes import HypesError, resolve_hypes
from cauchy.hypes_upgrade import upgrade

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FIXTURES = sorted(glob.glob(os.path.join(HERE, "hypes", "*.json")))
CAUCHY_FILES = sorted(glob.glob(os.path.join(REPO, "hypes", "*", "*.json")))


def load(name: str) -> dict:
    with open(os.path.join(HERE, "hypes", name)) as fh:
        return json.load(fh)


def leaf_keys(doc: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else key
        out |= leaf_keys(value, path) if isinstance(value, dict) and value else {path}
    return out


@pytest.mark.parametrize("path", CAUCHY_FILES, ids=os.path.basename)
def test_a_cauchy_file_is_not_torchcv_and_comes_back_unchanged(path: str) -> None:
    with open(path) as fh:
        doc = json.load(fh)
    result = upgrade(doc)
    assert not result.is_torchcv and result.changes == [] and result.hypes == doc


@pytest.mark.parametrize("path", FIXTURES, ids=os.path.basename)
def test_every_fixture_is_recognised_and_every_key_it_drops_is_reported(path: str) -> None:
    with open(path) as fh:
        doc = json.load(fh)
    result = upgrade(doc)
    assert result.is_torchcv and result.translated and result.ignored
    reported = {c.key for c in result.changes}
    new_keys = leaf_keys(result.hypes)
    for key in leaf_keys(doc) - new_keys:  # a key that is gone was reported, itself or a section above it
        parts = key.split(".")
        assert any(".".join(parts[:i]) in reported for i in range(1, len(parts) + 1)), key
    assert upgrade(result.hypes).changes == []  # translated once is Cauchy's form


def test_the_issue_keys_map_to_their_cauchy_meaning() -> None:
    h = upgrade(load("cls_fc_vgg19_cifar10.json")).hypes
    assert h["method"] == "image_classifier" and h["loss"] == {"loss_type": "ce", "params": {}}
    aug = h["train"]["aug_trans"]
    assert aug["trans_seq"] == ["random_hflip", "pad", "random_crop"]
    assert aug["random_hflip"] == {"p": 0.5}
    assert aug["pad"] == {"p": 1.0, "border": [4, 4, 4, 4], "fill": [124, 116, 104]}
    assert aug["random_crop"] == {"size": [32, 32], "fill": [124, 116, 104]}
    assert h["solver"]["lr"]["lr_policy"] == "multistep" and h["solver"]["checkpoint"]["every"] == 2000
    assert h["data"]["class_names"][0] == "plane" and h["network"]["checkpoints_name"] == "fc_vgg19_cifar10_cls"
    assert h["logging"] == {"log_level": "info"} and h["data"]["format"] == "label_json"
    assert h["solver"]["test_interval"] == 1  # 100 iterations: every epoch here


def test_bgr_means_are_reversed_and_seg_losses_weights_and_test_mode_map() -> None:
    result = upgrade(load("seg_fs_deeplabv3_cityscapes.json"))
    h = result.hypes
    assert h["data"]["normalize"]["mean"] == [122.7717, 115.9465, 102.9801] and "input_mode" not in h["data"]
    assert h["loss"]["loss_type"] == "cross_entropy" and len(h["loss"]["params"]["class_weights"]) == 19
    assert h["network"] == {"model_name": "deeplabv3_resnet50", "params": {"aux_weight": 0.4},
                            "checkpoints_name": "fs_deeplabv3_cityscapes_seg"}
    assert h["test"]["mode"] == "whole" and h["solver"]["lr"]["lr_policy"] == "poly"
    assert h["train"]["aug_trans"]["pad"] == {"size": [769, 769], "position": "random", "fill": [123, 116, 103],
                                              "mask_fill": 255}
    ignored = {c.key: c.note for c in result.ignored}
    assert "syncbn" in ignored["network.bn_type"]
    assert h["data"]["params"]["label_ids"][:3] == [7, 8, 11] and len(h["data"]["params"]["label_ids"]) == 19


def test_openpose_maps_to_the_pose_task_and_lambda_linear_is_poly_power_1() -> None:
    result = upgrade(load("pose_openpose_vgg19_coco.json"))
    h = result.hypes
    assert h["method"] == "openpose" and h["loss"]["loss_type"] == "openpose_mse" and h["loss"]["params"] == {}
    assert h["network"]["model_name"] == "openpose_vgg19" and h["network"]["params"] == {"num_limbs": 19, "stages": 6}
    assert h["data"]["format"] == "coco_keypoints"
    assert h["data"]["params"] == {"samples": "image", "image_dir": "{split}/image"}
    assert h["target"] == {"sigma": 7.0 / 8, "paf_width": 1.0,
                           "grouping": {"peak_thresh": 0.1, "min_dot": 0.05, "samples": 10, "min_aligned": 0.8,
                                        "min_parts": 3, "min_mean_score": 0.2}}
    assert h["train"]["aug_trans"]["random_hflip"] == {"p": 0.5}
    assert h["train"]["aug_trans"]["trans_seq"] == ["random_hflip", "random_scale", "random_affine", "random_crop", "pad"]
    assert h["train"]["aug_trans"]["random_affine"] == {"rotation": 40, "fill": [124, 116, 104]}
    translated = {c.key: c.note for c in result.translated}
    assert "the dataset's flip pairs" in translated["train.aug_trans.random_hflip.swap_pair"]
    assert "7.0 input pixels / stride 8" in translated["target.heatmap.sigma"]
    ignored = {c.key: c.note for c in result.ignored}
    assert "'sum'" in ignored["loss.params.mse_reduction"] and "0.5" in ignored["train.aug_trans.random_rotate.ratio"]


def test_older_openpose_files_give_grouping_thresholds_under_vis_and_theta_under_heatmap() -> None:
    """torchcv's op_vgg19_coco_pose.json: ``vis`` holds the thresholds and the drawing sizes."""
    doc = load("pose_openpose_vgg19_coco.json")
    doc["vis"] = {"num_threshold": 4, "limb_threshold": 0.2, "stick_width": 4, "circle_radius": 4}
    del doc["res"]
    result = upgrade(doc)
    assert result.hypes["target"]["grouping"] == {"min_parts": 4, "min_dot": 0.2}
    assert result.hypes["target"]["paf_width"] == 1.0 and "vis" not in result.hypes
    assert {"vis.stick_width", "vis.circle_radius"} <= {c.key for c in result.ignored}
    h = upgrade(load("cls_ic_shufflenetv2_imagenet.json")).hypes
    assert h["solver"]["lr"]["lr_policy"] == "poly" and h["solver"]["lr"]["poly"] == {"power": 1.0}
    assert h["train"]["aug_trans"]["resize_short"] == {"size": 256}
    assert h["train"]["aug_trans"]["center_crop"] == {"size": [224, 224], "fill": [124, 116, 104]}


def test_detection_names_anchors_and_background_class() -> None:
    h = upgrade(load("det_yolov3_darknet_coco.json")).hypes
    assert h["network"]["model_name"] == "yolov3_darknet53" and h["loss"]["loss_type"] == "yolov3"
    assert h["loss"]["params"] == {"box_weight": 1.0, "obj_weight": 5.0, "cls_weight": 1.0, "ignore_iou": 0.5}
    assert h["anchor"]["anchors"][0] == [[10, 13], [16, 30], [33, 23]]
    assert h["res"] == {"nms_iou": 0.45, "score_thresh": 0.5}
    h = upgrade(load("det_fr_vgg16_voc.json")).hypes
    assert h["data"]["num_classes"] == 20 and h["val"]["evaluator"] == "voc"
    assert h["network"]["model_name"] == "fasterrcnn_resnet50_fpn" and "rpn" not in h
    assert h["train"]["aug_trans"]["resize_short"] == {"size": 600, "max_size": 1000}


def test_an_unknown_key_passes_through_for_validation_to_name() -> None:
    doc = load("cls_fc_vgg19_cifar10.json")
    doc["solver"]["not_a_key"] = 3
    with pytest.raises(HypesError, match=r"solver.not_a_key: unknown key"):
        resolve_hypes(upgrade(doc).hypes)


@pytest.mark.parametrize("bad", [{"task": "cls", "train_trans": {"trans_seq": "x", "resize": 3}},
                                 {"task": "det", "train": {"data_transformer": {"size_mode": "multi_size",
                                                                                "ms_input_size": 5}}},
                                 {"task": "seg", "test": {"resize_bound": 7}, "lr": [], "normalize": 1}])
def test_malformed_old_files_translate_without_crashing(bad: dict) -> None:
    upgrade(bad)


def test_a_key_set_in_both_forms_keeps_cauchys_and_says_so() -> None:
    result = upgrade({"task": "cls", "solver": {"display_iters": 5, "display_iter": 7}})
    assert result.hypes["solver"] == {"display_iter": 7}
    assert [c.line() for c in result.ignored] == ["ignored    solver.display_iters: solver.display_iter is set too; "
                                                  "its value is kept"]
