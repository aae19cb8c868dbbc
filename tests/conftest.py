"""Fixtures shared by the whole test suite."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """scikit-learn's 8x8 digits as PNG class folders (train/val), made once per test session."""
    out = str(tmp_path_factory.mktemp("data") / "digits")
    subprocess.run([sys.executable, os.path.join(REPO, "scripts/cls/digits/prepare.py"), "--out", out],
                   check=True, capture_output=True)
    return out


class CreatesFile:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for code a malicious checkpoint would run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return open, (self.marker, "w")


@pytest.fixture
def malicious_pickle(tmp_path):
    """``malicious_pickle(path)`` writes a torch file whose unpickling would create ``tmp_path/pwned``;
    returns the marker's path, which must still not exist after a loader refused the file."""
    import torch

    marker = tmp_path / "pwned"

    def write(path) -> str:
        torch.save({"model": {"w": CreatesFile(str(marker))}, "class_names": ["a"]}, path)
        return marker

    return write
