"""Settings from a TOML file and CAUCHY_* variables; GPUs found without torch."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.config import THREADS_PER_CORE, detect_gpus, load_settings, parse_port_range


def test_defaults_file_then_environment(tmp_path: Path):
    config = tmp_path / "cauchy.toml"
    config.write_text('port = 9000\ncpu_slots = 6\nvisdom_ports = [9100, 9120]\ngpus = ["0", "1"]\n')
    settings = load_settings(config, {"CAUCHY_PORT": "9001", "CAUCHY_HOME": str(tmp_path)})
    assert settings.port == 9001 and settings.cpu_slots == 6 and settings.visdom_ports == (9100, 9120)
    assert settings.gpus == ("0", "1") and settings.home == tmp_path
    assert settings.db_url == f"sqlite:///{tmp_path / 'cauchy.db'}"
    defaults = load_settings(None, {"CUDA_VISIBLE_DEVICES": ""})
    assert defaults.host == "127.0.0.1" and defaults.port == 8399 and defaults.visdom_ports == (8140, 8199)
    assert load_settings(None, {"CAUCHY_DATABASE_URL": "postgresql://db/cauchy"}).db_url == "postgresql://db/cauchy"


def test_bad_settings_are_refused(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text("colour = 1\n")
    with pytest.raises(ValueError, match="unknown settings colour"):
        load_settings(config, {})
    with pytest.raises(ValueError):
        parse_port_range("9000-8000")


def test_gpus_from_cuda_visible_devices_or_none():
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ("2", "3")
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == ()
    assert detect_gpus({"PATH": "/nonexistent"}) == ()


def test_the_executor_settings():
    settings = load_settings(environ={"CAUCHY_EXECUTOR": "ray", "CAUCHY_RAY_ADDRESS": "http://head:8265/",
                                      "CAUCHY_SHARED_HOME": "yes", "CAUCHY_PORT": "9000"})
    assert (settings.executor, settings.ray_address, settings.shared_home) == ("ray", "http://head:8265", True)
    assert settings.service_url_for_nodes == "http://127.0.0.1:9000"
    assert load_settings(environ={}).executor == "local"
    with pytest.raises(ValueError, match="unknown executor 'slurm'; expected one of local, ray"):
        load_settings(environ={"CAUCHY_EXECUTOR": "slurm"})
    with pytest.raises(ValueError, match="expected true or false"):
        load_settings(environ={"CAUCHY_SHARED_HOME": "maybe"})


def test_request_threads_follow_the_cores_unless_set():
    assert load_settings(environ={"CAUCHY_THREADS": "3"}).request_threads == 3
    computed = load_settings(environ={"CAUCHY_LEGACY_WAITERS": "2"})
    assert computed.threads == 0 and computed.request_threads == 2 + THREADS_PER_CORE * (os.cpu_count() or 1)
