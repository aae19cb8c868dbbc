"""The whole front door for tests: the control service under waitress (``LiveService`` of the service
tests) with nginx rendered from ``scripts/nginx`` in front of it, all on free ports of 127.0.0.1."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

from script_loader import load_script

from services.config import Settings

REPO = Path(__file__).resolve().parents[2]
VISDOM_PORTS = (18200, 18259)


frontdoor = load_script("scripts/nginx/frontdoor.py")
sys.path.insert(0, str(REPO / "tests/services"))
import live_service as service_fixtures  # noqa: E402  (the module the service tests' conftest uses too)

FAKE_TASK = service_fixtures.FAKE_TASK
make_hypes = service_fixtures.make_hypes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fast_settings(home: Path, **changes) -> Settings:
    """Settings of the service tests (stand-in task, short grace) over ``home``."""
    return Settings(home=home, visdom_ports=VISDOM_PORTS, cpu_slots=2, gpus=(), task_command=(sys.executable, FAKE_TASK),
                    stop_grace_s=5.0, visdom_linger_s=60.0, poll_interval_s=0.1, threads=8,
                    component_check=()).replace(**changes)


class Stack:
    """nginx on ``url`` in front of a live service; ``close()`` ends both and every job process."""

    def __init__(self, settings: Settings) -> None:
        front_port = free_port()
        self.service = service_fixtures.LiveService(settings)
        self.door = frontdoor.FrontDoor("127.0.0.1", front_port, self.service.url.removeprefix("http://"),
                                        settings.home)
        try:
            self.nginx = frontdoor.start(self.door)
        except BaseException:
            self.service.close()
            raise
        self.url = self.door.url

    def close(self) -> None:
        frontdoor.stop(self.nginx)
        self.service.close()
