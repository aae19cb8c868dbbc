"""Old torchcv files through run_tasks: each passes --check as it is; one per task trains a few
iterations on the tiny data (the data's own format and size set with --set / --unset, as a user
pointing an old file at new data would); --check reports every problem at once, naming hypes keys."""
from __future__ import annotations

import glob
import json
import os

import pytest

import run_tasks
from cauchy import exitcodes, rundir
from cauchy.hypes_upgrade import upgrade
from cauchy.visualizer import read_events

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = sorted(glob.glob(os.path.join(HERE, "hypes", "*.json")))


def fixture(name: str) -> str:
    return os.path.join(HERE, "hypes", name)


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def unsets(*keys: str) -> list[str]:
    return [arg for key in keys for arg in ("--unset", key)]


@pytest.mark.parametrize("path", FIXTURES, ids=os.path.basename)
def test_every_torchcv_fixture_passes_check_as_it_is(path: str, capsys) -> None:
    with open(path) as fh:
        method = upgrade(json.load(fh)).hypes["method"]
    assert run_tasks.main(["--hypes", path, "--check"]) == exitcodes.OK, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert json.loads(out)["method"] == method
    assert err.startswith("torchcv hypes translated: ") and "ignored    logging.rewrite" in err


def train(path: str, run_dir, *extra: str) -> list[dict]:
    common = sets("data.workers=0", "solver.max_iters=2", "train.batch_size=2", "val.batch_size=4",
                  "solver.display_iter=1", "logging.progress_bar=false", "solver.lr.warm.warm_iters=0")
    assert run_tasks.main(["--hypes", path, "--tmp_dir", str(run_dir), *common, *unsets("solver.max_epoch"),
                           *extra]) == exitcodes.OK
    report = json.loads((run_dir / rundir.HYPES_UPGRADE).read_text())
    assert report["translated"] and report["ignored"]
    return read_events(os.path.join(run_dir, rundir.METRICS))


@pytest.mark.slow
def test_a_torchcv_cls_file_trains(tmp_path, digits_dir: str, capsys) -> None:
    events = train(fixture("cls_fc_vgg19_cifar10.json"), tmp_path,
                   *sets(f"data.data_dir={digits_dir}", "data.format=image_folder", "network.model_name=small_cnn",
                         "solver.lr.metric=iters", "solver.test_interval=2", "solver.lr.multistep.stepvalue=[1]"),
                   *unsets("data.class_names"))
    assert {"loss", "lr"} <= {e["name"] for e in events if e["phase"] == "train"}
    assert "top1" in {e["name"] for e in events if e["phase"] == "val"}
    assert "translated loss.loss_type ('fc_ce_loss' -> 'ce')" in capsys.readouterr().out


@pytest.mark.slow
def test_a_torchcv_det_file_trains(tmp_path, shapes_dir: str) -> None:
    events = train(fixture("det_yolov3_darknet_coco.json"), tmp_path,
                   *sets(f"data.data_dir={shapes_dir}", "data.format=voc", "network.model_name=yolov3_small",
                         "solver.lr.metric=iters", "solver.test_interval=2",
                         *(f"{split}.data_transformer.input_size=[64,64]" for split in ("train", "val", "test"))),
                   *unsets("data.class_names", "data.num_classes"))
    assert "map50" in {e["name"] for e in events if e["phase"] == "val"}


@pytest.mark.slow
def test_a_torchcv_seg_file_trains(tmp_path, seg_shapes: str) -> None:
    events = train(fixture("seg_fs_pspnet_ade20k.json"), tmp_path,
                   *sets(f"data.data_dir={seg_shapes}", "data.format=voc_seg", "network.model_name=tiny_unet",
                         "train.aug_trans.resize_short.size=64", "train.aug_trans.random_crop.size=[48,48]",
                         "train.aug_trans.pad.size=[48,48]", "val.aug_trans.resize_short.size=64",
                         "test.aug_trans.resize_short.size=64", "solver.test_interval=2"),
                   *unsets("data.params", "data.num_classes", "network.params"))
    assert "miou" in {e["name"] for e in events if e["phase"] == "val"}


@pytest.mark.slow
def test_a_torchcv_pose_file_trains(tmp_path, sticks: str) -> None:
    crop = [f"{split}.aug_trans.{name}.size=[64,64]" for split in ("train", "val") for name in ("random_crop", "pad")]
    events = train(fixture("pose_openpose_vgg19_coco.json"), tmp_path,
                   *sets(f"data.data_dir={sticks}", "data.params.image_dir=images", "network.model_name=openpose_small",
                         "network.params.num_limbs=14", "network.params.stages=2", "network.params.width=16",
                         "test.data_transformer.input_size=[96,96]", "solver.lr.metric=iters",
                         "solver.lr.lr_policy=fixed", "solver.test_interval=2", *crop))
    assert {"loss_paf", "loss_heatmap"} <= {e["name"] for e in events if e["phase"] == "train"}
    assert "ap" in {e["name"] for e in events if e["phase"] == "val"}


def test_check_reports_every_problem_at_once_naming_hypes_keys(tmp_path, capsys) -> None:
    with open(fixture("cls_fc_vgg19_cifar10.json")) as fh:
        doc = json.load(fh)
    doc["loss"]["loss_type"] = "ce"  # Cauchy's own loss: torchcv's ce_reduction is then a wrong parameter
    doc["train_trans"]["random_crop"]["bogus"] = 1
    doc["network"]["pooled_sizes"] = 2
    doc["solver"]["max_epoch"] = "many"
    doc["data"]["params"] = {"nope": 1}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    assert run_tasks.main(["--hypes", str(path), "--check", "--set", "network.params.widht=3"]) == exitcodes.BAD_INPUT
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    keys = [line.split(":")[1].strip() for line in errors]
    assert keys == ["network.pooled_sizes", "solver.max_epoch", "train.aug_trans.random_crop.bogus",
                    "data.params.nope", "network.params.widht", "loss.params.ce_reduction"], errors
    assert all("__init__" not in line and "keyword argument" not in line for line in errors)
    assert "its parameters: label_smoothing, weight" in errors[-1]


def test_what_passes_check_builds_for_training(tmp_path, capsys) -> None:
    """The loss's and a transform's parameters are checked by building them, as training does."""
    bad = ["--set", 'loss.params={"ce_reduction": "mean"}', "--set", "train.aug_trans.random_hflip.p=0.5"]
    path = fixture("cls_ic_shufflenetv2_imagenet.json")
    assert run_tasks.main(["--hypes", path, "--check", "--set", "loss.loss_type=ce", *bad]) == exitcodes.BAD_INPUT
    assert "error: loss.params.ce_reduction: not a parameter of loss ce" in capsys.readouterr().err


def test_set_null_and_unset_remove_a_key(capsys) -> None:
    path = fixture("cls_fc_vgg19_cifar10.json")
    assert run_tasks.main(["--hypes", path, "--check", "--unset", "solver.max_epoch", "--set", "solver.max_iters=5",
                           "--set", "train.aug_trans.random_hflip.p=null", "--unset", "no.such.section"]) == exitcodes.OK
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["solver"]["max_epoch"] is None and resolved["solver"]["max_iters"] == 5
    assert resolved["train"]["aug_trans"]["random_hflip"] == {}
