"""The tiny det and seg shapes sets and pose sticks set of tests/cauchy/{det,seg,pose}, for the legacy runs."""
from __future__ import annotations

import pytest
from script_loader import load_script


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("det") / "shapes")
    load_script("scripts/det/shapes/prepare.py").prepare(out, train=8, val=4, size=64, seed=3)
    return out


@pytest.fixture(scope="session")
def seg_shapes(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("seg") / "shapes")
    load_script("scripts/seg/shapes/prepare.py").prepare(out, train=8, val=4, size=64, seed=3)
    return out


@pytest.fixture(scope="session")
def sticks(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("pose") / "sticks")
    load_script("scripts/pose/sticks/prepare.py").prepare(out, train=8, val=4, size=96, seed=1)
    return out
