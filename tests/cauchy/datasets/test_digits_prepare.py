"""scripts/cls/digits/prepare.py writes the 1,797 sklearn digits as a stratified image_folder split."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from script_loader import load_script

import cauchy.datasets  # noqa: F401
from cauchy.registry import DATASETS

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "cls" / "digits" / "prepare.py"


def run(out: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args],
                          capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


@pytest.mark.slow
def test_prepare_writes_both_splits_and_is_idempotent(digits_dir):
    out = Path(digits_dir)  # written once per session by the shared fixture, through this script
    files = sorted(out.rglob("*.png"))
    assert len(files) == 1797
    for split in ("train", "val"):
        assert sorted(p.name for p in (out / split).iterdir()) == [str(d) for d in range(10)]
    val = DATASETS.build("image_folder", root=str(out), split="val")
    train = DATASETS.build("image_folder", root=str(out), split="train")
    assert len(val) == 360 and len(train) == 1437 and val.class_names == [str(d) for d in range(10)]
    assert val[0]["image"].shape == (8, 8, 3) and val[0]["image"].max() > 0
    assert "already complete" in run(out)
    assert sorted(out.rglob("*.png")) == files



@pytest.mark.slow
def test_other_fraction_moves_files_between_splits(tmp_path):
    prepare = load_script("scripts/cls/digits/prepare.py").prepare
    out = tmp_path / "digits"
    assert prepare(str(out)) == 1797
    assert 0 < prepare(str(out), val_fraction=0.5, seed=1) < 1797
    assert len(list(out.rglob("*.png"))) == 1797
    assert abs(len(list((out / "val").rglob("*.png"))) - 898) <= 1
