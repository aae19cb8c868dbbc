"""Fixtures for the control service tests: settings over a temporary home (SQLite, or a throwaway
PostgreSQL), and live services (``live_service.py``) running real processes, stopped after each test."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.config import Settings

sys.path.insert(0, str(Path(__file__).parent))
from live_service import FAKE_TASK, LiveService, make_hypes, port_range
from postgres import Cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One PostgreSQL server for the session; ``postgres.new_database()`` per test."""
    cluster = Cluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite under the test's home (the default); parametrize with ``"postgresql"`` for a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return request.getfixturevalue("postgres").new_database()
    return ""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Fast settings over a temporary home, with the stand-in task."""
    return Settings(home=tmp_path / "home", visdom_ports=port_range(60), cpu_slots=2, gpus=(),
                    task_command=(sys.executable, FAKE_TASK), stop_grace_s=3.0, visdom_linger_s=30.0,
                    poll_interval_s=0.1, threads=8, database_url=database_url,
                    component_check=())  # the check imports torch: tests/services/test_legacy_hypes.py turns it on


@pytest.fixture
def real_settings(settings: Settings, tmp_path: Path, digits_dir: str) -> Settings:
    """The real task; the temporary data folders are data roots, as an admin would list them."""
    return settings.replace(task_command=(sys.executable, "run_tasks.py"), stop_grace_s=60.0,
                            data_roots=(Path(digits_dir).parent, tmp_path))


@pytest.fixture
def service_factory() -> Iterator[Callable[..., LiveService]]:
    started: list[LiveService] = []

    def start(settings: Settings) -> LiveService:
        live = LiveService(settings)
        started.append(live)
        return live

    yield start
    for live in started:
        live.close()


@pytest.fixture
def service(settings: Settings, service_factory) -> LiveService:
    return service_factory(settings)


@pytest.fixture
def ports() -> Callable[[int], tuple[int, int]]:
    """``ports(n)``: a fresh range of n Visdom ports."""
    return port_range


@pytest.fixture
def fake_hypes() -> Callable[..., dict[str, Any]]:
    """``fake_hypes(mode, iters)``: hypes for the stand-in task."""
    return make_hypes
