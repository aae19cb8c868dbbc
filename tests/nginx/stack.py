"""The whole front door for tests: the control service under waitress (``LiveService`` of the service
tests) with nginx rendered from ``scripts/nginx`` in front of it, all on free ports of 127.0.0.1."""
from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import requests
from script_loader import load_script

from services.config import Settings

REPO = Path(__file__).resolve().parents[2]


frontdoor = load_script("scripts/nginx/frontdoor.py")
sys.path.insert(0, str(REPO / "tests/services"))
import live_service as service_fixtures  # noqa: E402  (the module the service tests' conftest uses too)

FAKE_TASK = service_fixtures.FAKE_TASK
FAKE_INSPECT = str(REPO / "tests/services/fake_inspect.py")  # the dataset inspection's stand-in
make_hypes = service_fixtures.make_hypes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fast_settings(home: Path, **changes) -> Settings:
    """Settings of the service tests (stand-in task and dataset inspection, short grace) over ``home``."""
    return Settings(home=home, visdom_ports=service_fixtures.port_range(60), cpu_slots=2, gpus=(), task_command=(sys.executable, FAKE_TASK),
                    dataset_inspect_command=(sys.executable, FAKE_INSPECT), stop_grace_s=5.0, visdom_linger_s=60.0,
                    poll_interval_s=0.1, threads=8, component_check=()).replace(**changes)


class Stack:
    """nginx on ``url`` in front of a live service; ``close()`` ends both and every job process."""

    def __init__(self, settings: Settings) -> None:
        # The service binds first: a port picked for nginx before it could be the one the kernel then
        # gives the service, and nginx would fail while the "listening" check found the service there.
        self.service = service_fixtures.LiveService(settings)
        self.door = frontdoor.FrontDoor("127.0.0.1", free_port(), self.service.url.removeprefix("http://"),
                                        settings.home, upload_max_body=f"{settings.dataset_chunk_mb}m")
        try:
            self.nginx = frontdoor.start(self.door)
        except BaseException:
            self.service.close()
            raise
        self.url = self.door.url
        try:
            self._wait_proxying()
        except BaseException:
            self.close()
            raise

    def _wait_proxying(self, timeout: float = 30.0) -> None:
        """Until a request through nginx reaches the service: nginx's workers may take their first
        connections a while after the master listens on a busy machine."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url + "/api/v1/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"nginx on {self.url} does not reach the service after {timeout:.0f} s"
            time.sleep(0.1)

    def close(self) -> None:
        frontdoor.stop(self.nginx)
        self.service.close()
