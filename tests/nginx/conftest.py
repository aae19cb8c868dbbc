"""nginx in front of a live service, over a temporary home."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from stack import Stack, fast_settings  # noqa: E402  (tests/nginx is on sys.path for its conftest)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    live = Stack(fast_settings(tmp_path / "home"))
    yield live
    live.close()
