"""nginx as Cauchy's front door: render ``cauchy.conf.in`` with the configured ports and paths, and run
nginx as a non-daemon child whose pid, logs and temporary files all live under ``<home>/nginx``.

Used by ``run_stack.py`` (``make run``), the nginx tests and ``bench/weights_host.py``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.auth.hosts import default_allowed_hosts, server_names
from services.weights_store import ensure_manifest, weights_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = HERE / "cauchy.conf.in"
MIME_TYPES = Path("/etc/nginx/mime.types")
TEMP_DIRS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")


class FrontDoorError(RuntimeError):
    """nginx is missing, its configuration is refused, or it did not start listening."""


@dataclass(frozen=True)
class FrontDoor:
    """Where the front door listens and what it serves."""

    listen_host: str
    listen_port: int
    service: str  # host:port of the control service
    home: Path  # $CAUCHY_HOME: weights/ is served, nginx/ holds nginx's own files
    webui: Path = REPO / "webui"
    max_body: str = "16m"
    upload_max_body: str = "64m"  # a dataset upload's chunk (CAUCHY_DATASET_CHUNK_MB), on that route alone
    allowed_hosts: tuple[str, ...] = ()  # Host values answered (CAUCHY_ALLOWED_HOSTS); empty: the defaults

    @property
    def prefix(self) -> Path:
        return self.home / "nginx"

    @property
    def conf(self) -> Path:
        return self.prefix / "cauchy.conf"

    @property
    def connect_host(self) -> str:
        """Where a client on this machine reaches it (a wildcard listen answers on loopback)."""
        return "127.0.0.1" if self.listen_host in ("0.0.0.0", "") else self.listen_host

    @property
    def url(self) -> str:
        return f"http://{self.connect_host}:{self.listen_port}"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def render(door: FrontDoor) -> Path:
    """Write the configuration and the directories it names; returns the configuration's path."""
    for sub in ("logs", *(f"tmp/{name}" for name in TEMP_DIRS)):
        (door.prefix / sub).mkdir(parents=True, exist_ok=True)
    ensure_manifest(weights_dir(door.home))
    # Run as root, nginx would hand requests to "nobody", who may not read a private $CAUCHY_HOME.
    user = "user root;" if os.geteuid() == 0 else ""
    listen = f"{door.listen_host}:{door.listen_port}" if door.listen_host else str(door.listen_port)
    values = {"user": user, "prefix": door.prefix, "mime_types": MIME_TYPES, "max_body": door.max_body,
              "upload_max_body": door.upload_max_body,
              "listen": listen, "webui": door.webui, "service": door.service, "weights": weights_dir(door.home),
              "server_names": " ".join(server_names(door.allowed_hosts or default_allowed_hosts()))}
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise FrontDoorError(f"{TEMPLATE}: a placeholder was left unfilled")
    door.conf.write_text(text, encoding="utf-8")
    return door.conf


def wait_listening(host: str, port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if proc.poll() is not None:
                raise FrontDoorError(f"exited with code {proc.returncode} before listening on {port}") from None
            if time.monotonic() > deadline:
                raise FrontDoorError(f"not listening on {port} after {timeout:.0f} s") from None
            time.sleep(0.05)


def start(door: FrontDoor, timeout: float = 15.0) -> subprocess.Popen:
    """Render, check (``nginx -t``) and start nginx in the foreground; returns once it listens."""
    binary = nginx_binary()
    if binary is None:
        raise FrontDoorError("nginx is not installed (scripts/system_packages.sh installs it)")
    conf = render(door)
    argv = [binary, "-p", str(door.prefix), "-c", str(conf)]
    check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        raise FrontDoorError(f"nginx refused {conf}: {check.stderr.strip()}")
    log = open(door.prefix / "logs" / "stderr.log", "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        wait_listening(door.connect_host, door.listen_port, proc, timeout)
    except FrontDoorError as exc:
        stop(proc)
        errors = (door.prefix / "logs" / "error.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise FrontDoorError(f"nginx {exc}: {' | '.join(errors)}") from None
    return proc


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Graceful quit (finish requests in flight), then kill the group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
