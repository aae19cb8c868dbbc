"""run_tasks.py end to end on the digits: train, resume exactly, stop on SIGTERM, test, predict, finetune."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import run_tasks
from cauchy import exitcodes
from cauchy.visualizer import read_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO, "hypes/cls/image_classifier_smallcnn_digits.json")
QUICK = ["solver.max_epoch=null", "data.num_classes=null", "solver.lr.metric=iters", "solver.display_iter=1", "logging.progress_bar=false"]


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def run_main(run_dir, digits_dir, *overrides, extra=()):
    args = ["--hypes", DIGITS, "--tmp_dir", str(run_dir), *sets(f"data.data_dir={digits_dir}", *QUICK, *overrides),
            *extra]
    return run_tasks.main(args)


@pytest.fixture(scope="module")
def digits3(tmp_path_factory, digits_dir):
    """Three classes of the digits (about 430 training images): short epochs for the slower tests."""
    out = tmp_path_factory.mktemp("digits3")
    for split in ("train", "val"):
        for digit in "012":
            shutil.copytree(os.path.join(digits_dir, split, digit), out / split / digit)
    return str(out)


def train_losses(run_dir, after=0):
    return [(e["step"], e["value"]) for e in read_events(os.path.join(run_dir, "metrics.jsonl"))
            if e["phase"] == "train" and e["name"] == "loss" and e["step"] > after]


def test_resume_mid_epoch_continues_exactly(tmp_path, digits3):
    # 14 iterations per epoch: the checkpoint at 9 is mid-epoch and the run crosses an epoch boundary.
    # Two workers: each sample's augmentation is seeded by (seed, epoch, index), not by a worker's stream.
    common = ("solver.max_iters=20", "solver.checkpoint.every=9", "details.deterministic=true", "data.workers=2",
              'train.aug_trans={"trans_seq": ["random_hflip"], "random_hflip": {"p": 0.5}}',
              "solver.test_interval=12", "solver.lr.lr_policy=cosine")
    assert run_main(tmp_path / "full", digits3, *common) == exitcodes.OK
    checkpoint = tmp_path / "full/checkpoints/iter_0000009.pth"
    assert run_main(tmp_path / "resumed", digits3, *common, extra=["--resume", str(checkpoint)]) == exitcodes.OK
    full, resumed = train_losses(tmp_path / "full", after=9), train_losses(tmp_path / "resumed")
    assert [s for s, _ in resumed] == list(range(10, 21))
    assert resumed == full
    ckpt = torch.load(tmp_path / "resumed/checkpoints/latest.pth", weights_only=True)
    assert ckpt["trainer"]["iter"] == 20 and ckpt["hypes"]["solver"]["max_iters"] == 20
    assert set(ckpt) >= {"model", "optimizer", "scaler", "hooks", "rng", "hypes", "class_names"}


def test_train_writes_run_directory(tmp_path, digits_dir):
    # Iterations as the length, epochs as the schedule's unit: the cosine spans ceil(6 / 45) = 1 epoch.
    assert run_main(tmp_path, digits_dir, "solver.max_iters=6", "solver.test_interval=3",
                    "solver.lr.metric=epoch", "solver.display_iter=4") == exitcodes.OK
    hypes = json.loads((tmp_path / "hypes.json").read_text())
    assert hypes["solver"]["max_iters"] == 6 and hypes["data"]["data_dir"] == digits_dir
    events = read_events(str(tmp_path / "metrics.jsonl"))
    assert events[0]["name"] == "max_iters" and events[0]["value"] == 6
    names = {(e["phase"], e["name"]) for e in events}
    assert {("train", "loss"), ("train", "lr"), ("train", "images_per_s"), ("train", "eta_s"),
            ("val", "top1"), ("val", "top5")} <= names
    assert all(set(e) == {"step", "epoch", "phase", "name", "value", "time"} for e in events)
    # The first step is logged on its own (its warm-up apart), then every display_iter, then the last.
    assert [step for step, _ in train_losses(tmp_path)] == [1, 4, 6]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["best.pth", "latest.pth"]
    assert not glob.glob(str(tmp_path / "checkpoints/.tmp-*"))


def test_test_and_predict_phases(tmp_path, digits_dir):
    assert run_main(tmp_path, digits_dir, "solver.max_iters=4") == exitcodes.OK
    assert run_main(tmp_path, digits_dir, "solver.max_iters=4", extra=["--phase", "test"]) == exitcodes.OK
    results = json.loads((tmp_path / "results.json").read_text())
    n_val = len(glob.glob(os.path.join(digits_dir, "val", "*", "*.png")))
    assert results["metrics"]["count"] == n_val and len(results["predictions"]) == n_val
    first = results["predictions"][0]
    assert {"path", "label", "class_name", "score", "scores"} <= set(first) and len(first["scores"]) == 10
    val_seven = os.path.join(digits_dir, "val", "7")
    assert run_main(tmp_path, digits_dir, "solver.max_iters=4",
                    extra=["--phase", "predict", "--input", val_seven]) == exitcodes.OK
    preds = json.loads((tmp_path / "predictions/predictions.json").read_text())["predictions"]
    assert len(preds) == len(os.listdir(val_seven)) and all(p["class_name"] in "0123456789" for p in preds)


def test_finetune_replaces_head_and_freezes(tmp_path, digits_dir, caplog):
    assert run_main(tmp_path / "base", digits_dir, "solver.max_iters=3") == exitcodes.OK
    five = tmp_path / "five"
    for split in ("train", "val"):
        for digit in "01234":
            shutil.copytree(os.path.join(digits_dir, split, digit), five / split / digit)
    pretrained = tmp_path / "base/checkpoints/latest.pth"
    code = run_tasks.main(["--hypes", DIGITS, "--phase", "finetune", "--tmp_dir", str(tmp_path / "ft"),
                           *sets(f"data.data_dir={five}", *QUICK, "data.num_classes=5", "solver.max_iters=3",
                                 f"network.pretrained={pretrained}", 'network.freeze=["features"]')])
    assert code == exitcodes.OK
    assert "replacing 2 tensors whose shape differs (new head)" in caplog.text
    before = torch.load(pretrained, weights_only=True)["model"]
    after = torch.load(tmp_path / "ft/checkpoints/latest.pth", weights_only=True)["model"]
    assert torch.equal(before["features.0.0.weight"], after["features.0.0.weight"])
    assert after["classifier.1.weight"].shape == (5, 64)
    # Resuming takes the weights from the checkpoint: the pretrained file is not needed any more.
    os.remove(pretrained)
    code = run_tasks.main(["--hypes", DIGITS, "--phase", "finetune", "--tmp_dir", str(tmp_path / "ft"),
                           "--resume", "latest",
                           *sets(f"data.data_dir={five}", *QUICK, "data.num_classes=5", "solver.max_iters=5",
                                 f"network.pretrained={pretrained}", 'network.freeze=["features"]')])
    assert code == exitcodes.OK
    resumed = torch.load(tmp_path / "ft/checkpoints/latest.pth", weights_only=True)
    assert resumed["trainer"]["iter"] == 5
    assert torch.equal(before["features.0.0.weight"], resumed["model"]["features.0.0.weight"])  # still frozen


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, os.path.join(REPO, "run_tasks.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize("override, message", [
    ('solver.lr.base_lr="fast"', 'error: solver.lr.base_lr: expected a number > 0, got "fast"'),
    ("network.model_name=resnet19", "error: network.model_name: unknown model 'resnet19'; valid:"),
    ("network.params.depth=3", "error: network.params.depth: not a parameter of model small_cnn; its parameters: "
                               "width, dropout"),
    ('train.aug_trans={"trans_seq": ["random_flop"]}', "unknown transform 'random_flop'"),
])
def test_bad_hypes_exit_code_and_message(tmp_path, digits_dir, override, message):
    proc = cli("--hypes", DIGITS, "--tmp_dir", str(tmp_path), *sets(f"data.data_dir={digits_dir}", override))
    assert proc.returncode == exitcodes.BAD_INPUT, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_broken_image_is_named(tmp_path, digits3):
    data = tmp_path / "data"
    shutil.copytree(digits3, data)
    bad = data / "train" / "2" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    proc = cli("--hypes", DIGITS, "--tmp_dir", str(tmp_path / "run"), *sets(f"data.data_dir={data}", *QUICK,
                                                                              "solver.max_iters=16"))
    assert proc.returncode == exitcodes.BAD_INPUT, proc.stderr
    assert "broken.png" in proc.stderr
    ok = cli("--hypes", DIGITS, "--tmp_dir", str(tmp_path / "skip"),
             *sets(f"data.data_dir={data}", *QUICK, "solver.max_iters=2", "data.skip_bad_images=true"))
    assert ok.returncode == exitcodes.OK, ok.stderr


@pytest.mark.slow
def test_sigterm_saves_checkpoint_and_exits_stopped(tmp_path, digits_dir):
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "run_tasks.py"), "--hypes", DIGITS,
                             "--tmp_dir", str(tmp_path), *sets(f"data.data_dir={digits_dir}", *QUICK,
                                                               "solver.max_iters=100000")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(train_losses(tmp_path)) >= 5):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == exitcodes.STOPPED, err
    state = torch.load(tmp_path / "checkpoints/latest.pth", weights_only=True)
    stopped_at = state["trainer"]["iter"]
    assert 5 <= stopped_at < 100000
    resumed = cli("--hypes", DIGITS, "--tmp_dir", str(tmp_path), "--resume", "latest",
                  *sets(f"data.data_dir={digits_dir}", *QUICK, f"solver.max_iters={stopped_at + 3}"))
    assert resumed.returncode == exitcodes.OK, resumed.stderr
    assert [s for s, _ in train_losses(tmp_path, after=stopped_at)] == [stopped_at + 1, stopped_at + 2, stopped_at + 3]


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "hypes/cls/*.json"))))
def test_every_cls_hypes_runs_two_iterations(tmp_path, digits_dir, path):
    with open(path) as fh:
        size = 32 if json.load(fh)["network"]["model_name"] != "small_cnn" else None
    resize = [f'train.data_transformer={{"input_size": [{size}, {size}]}}',
              f'val.data_transformer={{"input_size": [{size}, {size}]}}'] if size else []
    code = run_tasks.main(["--hypes", path, "--tmp_dir", str(tmp_path), *sets(
        f"data.data_dir={digits_dir}", *QUICK, "solver.max_iters=2", "train.batch_size=4", "data.workers=0",
        *resize)])
    assert code == exitcodes.OK
    assert len(train_losses(tmp_path)) == 2


def test_check_and_list_components(capsys):
    assert run_tasks.main(["--list-components"]) == exitcodes.OK
    names = json.loads(capsys.readouterr().out)
    assert "small_cnn" in names["models"] and "image_folder" in names["datasets"] and "cls" in names["evaluators"]
    assert run_tasks.main(["--hypes", DIGITS, "--check"]) == exitcodes.OK
    assert json.loads(capsys.readouterr().out)["network"]["model_name"] == "small_cnn"
