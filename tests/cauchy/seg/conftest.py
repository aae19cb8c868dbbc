"""The seg shapes prepare script, loaded from scripts/ (not a package), and a tiny set made by it."""
from __future__ import annotations

from types import ModuleType

import pytest
from script_loader import load_script


def load_prepare() -> ModuleType:
    return load_script("scripts/seg/shapes/prepare.py")


@pytest.fixture(scope="session")
def seg_prepare() -> ModuleType:
    return load_prepare()


@pytest.fixture(scope="session")
def seg_shapes(tmp_path_factory: pytest.TempPathFactory, seg_prepare: ModuleType) -> str:
    """Eight train and four val images of at most 64 pixels, as VOC and COCO."""
    out = str(tmp_path_factory.mktemp("seg") / "shapes")
    seg_prepare.prepare(out, train=8, val=4, size=64, seed=3)
    return out
