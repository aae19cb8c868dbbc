"""The sticks prepare script, loaded from scripts/ (not a package), and tiny sets made by it."""
from __future__ import annotations

from types import ModuleType

import pytest
from script_loader import load_script


@pytest.fixture(scope="session")
def sticks_prepare() -> ModuleType:
    return load_script("scripts/pose/sticks/prepare.py")


@pytest.fixture(scope="session")
def sticks(tmp_path_factory: pytest.TempPathFactory, sticks_prepare: ModuleType) -> str:
    """Eight train and four val images of at most 96 pixels, several figures each."""
    out = str(tmp_path_factory.mktemp("pose") / "sticks")
    sticks_prepare.prepare(out, train=8, val=4, size=96, seed=1)
    return out


@pytest.fixture(scope="session")
def sticks_single(tmp_path_factory: pytest.TempPathFactory, sticks_prepare: ModuleType) -> str:
    out = str(tmp_path_factory.mktemp("pose") / "sticks_single")
    sticks_prepare.prepare(out, train=4, val=4, size=96, seed=2, single=True)
    return out
