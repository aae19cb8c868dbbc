"""The control service as the tests run it: the app under a real waitress on 127.0.0.1 in a thread of the
test process, a small client for it, and hypes for the stand-in task. A plain module (not a conftest) so
the nginx and weights tests import the same classes.

The service's admin is ``admin`` with ``ADMIN_PASSWORD``; ``service.call`` acts as the admin (with a
token), ``service.as_user(name, ...)`` makes a user and a client that acts as them."""
from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from argon2 import PasswordHasher
from waitress.server import create_server

from services.app import create_app, waitress_options
from services.config import Settings
from services.jobs.store import ENDED

FAKE_TASK = str(Path(__file__).with_name("fake_task.py"))
ADMIN_PASSWORD = "admin-password-for-tests"
# Cheap argon2 parameters: a test makes many users; the service's default costs half a second each here.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def port_range(size: int) -> tuple[int, int]:
    """A random Visdom port range, so that two test runs at once rarely meet (the bind check covers the rest).
    Each pytest-xdist worker draws from its own part of 20000-30000: a port the service allocated is bound
    by its Visdom a moment later, and another worker's service must not take it in between."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), worker + 1)
    low = 20000 + worker * (10000 // workers)
    first = random.randrange(low, low + 10000 // workers - size)
    return first, first + size - 1


def answers(port: int) -> bool:
    """Whether anything accepts a TCP connection on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def make_hypes(mode: str = "ok", iters: int = 3) -> dict[str, Any]:
    """A valid hypes document; ``dataset`` tells fake_task.py how to behave."""
    return {"task": "cls", "method": "image_classifier", "dataset": mode,
            "data": {"format": "image_folder", "data_dir": "data/digits"},
            "network": {"model_name": "small_cnn"},
            "solver": {"max_iters": iters, "lr": {"metric": "iters", "base_lr": 0.1}}}


class UserClient:
    """Requests to a live service as one user, with that user's token."""

    def __init__(self, url: str, name: str, token: str) -> None:
        self.url, self.name, self.token = url, name, token
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=30, **kwargs)

    def submit(self, hypes: Any, **fields: Any) -> dict[str, Any]:
        response = self.call("POST", "/api/v1/jobs", json={"hypes": hypes, **fields})
        assert response.status_code == 201, response.text
        return response.json()


class LiveService(UserClient):
    """The app under waitress in a thread of the test process; its requests are the admin's."""

    def __init__(self, settings: Settings, **app_options: Any) -> None:
        self.settings = settings = settings.replace(admin_password=settings.admin_password or ADMIN_PASSWORD)
        self.app = create_app(settings, password_hasher=TEST_HASHER, **app_options)
        # Port 0: the kernel picks a free port at bind, so no other test run can take it in between.
        self.server = create_server(self.app, host="127.0.0.1", port=0, **waitress_options(settings))
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        admin = self.accounts.user(self.app.extensions["cauchy"].admin)
        super().__init__(self.url, admin.name, self.accounts.create_token(admin.id, "tests").secret)

    @property
    def supervisor(self):
        return self.app.extensions["cauchy"].supervisor

    @property
    def accounts(self):
        return self.app.extensions["cauchy"].accounts

    def as_user(self, name: str, *, role: str = "member", groups: tuple[str, ...] = (), max_priority: int = 0,
                password: str = "test-user-password") -> UserClient:
        """A client acting as ``name``, made (with ``groups``, created when missing) if it does not exist."""
        user = self.accounts.user(name) or self.accounts.create_user(name, password, role, name.title(), max_priority)
        for group in groups:
            if not any(g["name"] == group for g in self.accounts.groups()):
                self.accounts.create_group(group)
            self.accounts.set_member(group, name)
        return UserClient(self.url, name, self.accounts.create_token(user.id, "tests").secret)

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
        self.app.extensions["cauchy"].close()

    def close(self) -> None:
        """Stop serving and end every process the service started (tests leave nothing behind)."""
        self.close_keeping_jobs()
        self.supervisor.terminate_all()
        self.app.extensions["cauchy"].store.engine.dispose()
