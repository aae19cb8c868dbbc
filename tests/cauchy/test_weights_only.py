"""Every loader of .pth files unpickles weights-only: a checkpoint with code in it is refused, naming the
file, and its code never runs (as a resume target, a checkpoint to test, pretrained weights)."""
from __future__ import annotations

import os
import pickle

import pytest
import torch

import cauchy.models  # noqa: F401
import run_tasks
from cauchy import exitcodes
from cauchy.engine.checkpoint import load_checkpoint
from cauchy.registry import MODELS
from cauchy.weights import WeightsError, load_pretrained
from cauchy.weights_only import UnsafeFileError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO, "hypes/cls/image_classifier_smallcnn_digits.json")


def test_the_pickle_really_runs_code_when_loaded_unsafely(tmp_path, malicious_pickle):
    """The stand-in is a real attack: the old ``weights_only=False`` created the file."""
    marker = malicious_pickle(tmp_path / "evil.pth")
    torch.load(tmp_path / "evil.pth", weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_code(tmp_path, malicious_pickle):
    marker = malicious_pickle(tmp_path / "evil.pth")
    refused = r"checkpoint .*evil\.pth does not load as weights only.*GLOBAL io\.open was not an allowed global by default\.$"
    with pytest.raises(UnsafeFileError, match=refused):
        load_checkpoint(str(tmp_path / "evil.pth"))
    assert not marker.exists()
    with open(tmp_path / "plain.pth", "wb") as fh:  # a bare pickle, not even a torch file
        pickle.dump({"model": {}}, fh)
    with pytest.raises(UnsafeFileError, match="plain.pth does not load as weights only"):
        load_checkpoint(str(tmp_path / "plain.pth"))
    torch.save({"optimizer": {}}, tmp_path / "nomodel.pth")
    with pytest.raises(UnsafeFileError, match="nomodel.pth holds no model state"):
        load_checkpoint(str(tmp_path / "nomodel.pth"))


def test_load_pretrained_refuses_code(tmp_path, malicious_pickle):
    marker = malicious_pickle(tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match=r"weights file .*evil\.pth does not load as weights only"):
        load_pretrained(MODELS.build("small_cnn", num_classes=10), str(tmp_path / "evil.pth"))
    assert not marker.exists()


@pytest.mark.parametrize("phase", ["train", "test"])
def test_run_tasks_refuses_a_malicious_resume_target(tmp_path, digits_dir, malicious_pickle, capsys, phase):
    marker = malicious_pickle(tmp_path / "evil.pth")
    code = run_tasks.main(["--hypes", DIGITS, "--tmp_dir", str(tmp_path / "run"), "--phase", phase,
                           "--resume", str(tmp_path / "evil.pth"), "--set", f"data.data_dir={digits_dir}",
                           "--set", "solver.max_iters=2", "--set", "solver.max_epoch=null"])
    assert code == exitcodes.BAD_INPUT
    assert f"error: checkpoint {tmp_path / 'evil.pth'} does not load as weights only" in capsys.readouterr().err
    assert not marker.exists()


def test_run_tasks_refuses_malicious_pretrained_weights(tmp_path, digits_dir, malicious_pickle, capsys):
    marker = malicious_pickle(tmp_path / "evil.pth")
    code = run_tasks.main(["--hypes", DIGITS, "--tmp_dir", str(tmp_path / "run"), "--phase", "finetune",
                           "--set", f"network.pretrained={tmp_path / 'evil.pth'}", "--set", f"data.data_dir={digits_dir}",
                           "--set", "solver.max_iters=2", "--set", "solver.max_epoch=null"])
    assert code == exitcodes.BAD_INPUT
    assert f"weights file {tmp_path / 'evil.pth'} does not load as weights only" in capsys.readouterr().err
    assert not marker.exists()
