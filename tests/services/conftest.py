"""Fixtures for the control service: settings over a temporary home, and the service itself served by a
real waitress on 127.0.0.1, running real processes (a stand-in task, or the real run_tasks.py)."""
from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from waitress.server import create_server

from services.app import create_app, waitress_options
from services.config import Settings
from services.jobs.store import ENDED

sys.path.insert(0, str(Path(__file__).parent))
from postgres import Cluster  # noqa: E402

FAKE_TASK = str(Path(__file__).with_name("fake_task.py"))


def port_range(size: int) -> tuple[int, int]:
    """A random Visdom port range, so that two test runs at once rarely meet (the bind check covers the rest)."""
    first = random.randrange(20000, 30000 - size)
    return first, first + size - 1


def make_hypes(mode: str = "ok", iters: int = 3) -> dict[str, Any]:
    """A valid hypes document; ``dataset`` tells fake_task.py how to behave."""
    return {"task": "cls", "method": "image_classifier", "dataset": mode,
            "data": {"format": "image_folder", "data_dir": "data/digits"},
            "network": {"model_name": "small_cnn"},
            "solver": {"max_iters": iters, "lr": {"metric": "iters", "base_lr": 0.1}}}


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
                    poll_interval_s=0.1, threads=8, database_url=database_url)


class LiveService:
    """The app under waitress in a thread of the test process, and a small client for it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        # Port 0: the kernel picks a free port at bind, so no other test run can take it in between.
        self.server = create_server(self.app, host="127.0.0.1", port=0, **waitress_options(settings))
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.http = requests.Session()

    @property
    def supervisor(self):
        return self.app.extensions["cauchy"].supervisor

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=30, **kwargs)

    def submit(self, hypes: Any, **fields: Any) -> dict[str, Any]:
        response = self.call("POST", "/api/v1/jobs", json={"hypes": hypes, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def job(self, job_id: int) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/jobs/{job_id}").json()

    def wait(self, job_id: int, until: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if until(job):
                return job
            assert time.monotonic() < deadline, f"timed out waiting on job {job_id}: {job}"
            time.sleep(0.05)

    def wait_ended(self, job_id: int, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait(job_id, lambda job: job["state"] in ENDED, timeout)

    def wait_metrics(self, job_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the job runs and its metrics.jsonl has a line."""
        deadline = time.monotonic() + timeout
        while not self.call("GET", f"/api/v1/jobs/{job_id}/metrics").json()["events"]:
            assert time.monotonic() < deadline, f"job {job_id} wrote no metrics: {self.job(job_id)}"
            time.sleep(0.05)
        return self.job(job_id)

    def close_keeping_jobs(self) -> None:
        """Stop serving and supervising, as a service that goes down; its jobs keep running."""
        if self.thread.is_alive():
            # Close every channel from inside waitress's loop, which then ends (closing from here races its select).
            try:
                self.server.trigger.pull_trigger(lambda: [channel.close() for channel in list(self.server._map.values())])
            except OSError:
                pass  # the loop woke for a response between queueing the thunk and the wake-up byte, and closed the trigger
            self.thread.join(5)
            assert not self.thread.is_alive(), "waitress did not stop"
            self.server.task_dispatcher.shutdown()
        self.supervisor.shutdown()

    def close(self) -> None:
        """Stop serving and end every process the service started (tests leave nothing behind)."""
        self.close_keeping_jobs()
        supervisor = self.supervisor
        for run in list(supervisor.running.values()):
            run.proc.terminate_group(grace=0.5)
        for viewer in list(supervisor.viewers.values()):
            viewer.proc.terminate_group(grace=0.5)
        self.app.extensions["cauchy"].store.engine.dispose()


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
