"""nginx in front of a live service, over a temporary home."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import Stack, fast_settings


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    live = Stack(fast_settings(tmp_path / "home"))
    yield live
    live.close()
