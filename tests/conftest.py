"""Fixtures shared by the whole test suite."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil
import pytest


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running(tmp_path_factory: pytest.TempPathFactory):
    """At the end of the session, end every process still running over this session's temporary folders.

    Tests that kill a service with -9 leave its jobs and viewers running on purpose (a restarted service
    adopts them), and a test that fails half-way may not reach its own clean-up: neither may outlive
    the suite. A process is ours when its command line names a path under the session's base folder."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    ours = [proc for proc in psutil.process_iter(["cmdline"])
            if proc.pid != os.getpid() and any(base in arg for arg in proc.info["cmdline"] or ())]
    for proc in ours:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(ours, timeout=10)


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
