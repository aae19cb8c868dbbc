#!/usr/bin/env python
"""``make run``: the control service and nginx in front of it on port 8080, until Ctrl-C.

Without nginx (not installed and not installable) the service itself answers on 8080: the page, the
API and the weights, with the charts at the Visdom ports on this host. Ctrl-C stops the jobs (each
saves a checkpoint, so it can be resumed), their viewers, the service and nginx.

    python scripts/nginx/run_stack.py [--port 8080] [--host 0.0.0.0]
Settings (CAUCHY_HOME, CAUCHY_PORT, ...) come from the environment as for ``cauchy serve``.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import frontdoor  # noqa: E402

from services.auth.accounts import Accounts  # noqa: E402
from services.auth.secrets import ADMIN_PASSWORD_FILE, token_key  # noqa: E402
from services.config import Settings, load_settings  # noqa: E402
from services.jobs.store import Store  # noqa: E402

STOP_WAIT_S = 60.0


def start_service(port: int, env: dict[str, str], log: Path, timeout: float = 60.0) -> subprocess.Popen:
    """``python -m services`` on ``port``; returns once its health check answers."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services"], cwd=frontdoor.REPO, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env={**env, "CAUCHY_PORT": str(port)},
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the control service did not start on port {port}; see {log}")
        time.sleep(0.2)


def stop_jobs(api: str, headers: dict[str, str]) -> None:
    """Ask every active job to stop and wait (bounded) until each has saved its checkpoint and ended."""
    try:
        active = requests.get(f"{api}/jobs", params={"state": "queued,running,stopping", "limit": 500},
                              headers=headers, timeout=10)
        for job in active.json()["jobs"]:
            requests.post(f"{api}/jobs/{job['id']}/stop", headers=headers, timeout=10)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and requests.get(
                f"{api}/jobs", params={"state": "running,stopping"}, headers=headers, timeout=10).json()["total"]:
            time.sleep(0.5)
    except (requests.RequestException, ValueError, KeyError) as exc:
        print(f"could not stop the jobs through the API: {exc}", file=sys.stderr)


def stop_service(proc: subprocess.Popen) -> None:
    """SIGTERM the service, then whatever it started that is still up (the viewers, in their own groups)."""
    children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
    psutil.wait_procs(children, timeout=10)


def operator_token(settings: Settings) -> tuple[Accounts, int, dict[str, str]]:
    """A token of the admin for this script's own calls (stopping the jobs at Ctrl-C), revoked at exit."""
    accounts = Accounts(Store(settings.db_url), token_key(settings.home))
    admin = accounts.user(accounts.admin_name())
    new = accounts.create_token(admin.id, "make run (stops the jobs at exit)", expires_in_days=30)
    return accounts, new.row.id, {"Authorization": f"Bearer {new.secret}"}


def sign_in_hint(settings: Settings) -> str:
    """How to sign in: the first admin's password is CAUCHY_ADMIN_PASSWORD's or in a file the service wrote."""
    password_file = settings.home / ADMIN_PASSWORD_FILE
    if password_file.exists():
        where = f"its password is in {password_file} (mode 0600)"
    elif settings.admin_password:
        where = "its password is CAUCHY_ADMIN_PASSWORD"
    else:
        where = "an admin exists already: ask them for an account"
    return (f"sign in as 'admin' on the page ({where}); add people with `cauchy user add NAME`, "
            f"and get a token for the CLI with `cauchy login`")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


class StopSignal:
    """SIGTERM and SIGINT only set a flag, whichever arrives and however often: ``make`` and this script
    both get the signal sent to ``make run``'s process group, and a second one must not cut the
    clean-up short (it did when the handler raised), so the stack shuts down exactly once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._handle)

    def _handle(self, number: int, _frame: object) -> None:
        if not self.event.is_set():
            print(f"\n{signal.Signals(number).name}: stopping (a second signal changes nothing)", flush=True)
        self.event.set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)


def main() -> int:
    stop = StopSignal()  # before anything starts: a signal during start-up stops it too
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("CAUCHY_FRONT_PORT", "8080")))
    parser.add_argument("--host", default=os.environ.get("CAUCHY_FRONT_HOST", "0.0.0.0"),
                        help="nginx's listen address (CAUCHY_FRONT_HOST)")
    args = parser.parse_args()
    public_url = os.environ.get("CAUCHY_PUBLIC_URL") or f"http://{socket.gethostname()}:{args.port}"
    settings = load_settings().replace(public_url=public_url)
    settings = settings.replace(home=settings.home.resolve())
    env = {**os.environ, "CAUCHY_HOME": str(settings.home), "CAUCHY_PUBLIC_URL": public_url}
    settings.home.mkdir(parents=True, exist_ok=True)
    if not port_free(args.port):
        raise SystemExit(f"port {args.port} is already in use; stop what runs there or pass --port")
    use_nginx = frontdoor.nginx_binary() is not None
    service_port = settings.port if use_nginx else args.port
    if not use_nginx:
        print(f"nginx is not installed and could not be installed: the control service serves the page, the API "
              f"and the weights on {args.port} itself (charts open at the Visdom ports of this host)")
    service = start_service(service_port, env, settings.home / "service.log")
    accounts, token_id, headers = operator_token(settings)
    nginx = None
    try:
        if use_nginx:
            door = frontdoor.FrontDoor(args.host, args.port, f"127.0.0.1:{service_port}", settings.home,
                                       max_body=str(settings.max_request_bytes),  # the service's own limit
                                       upload_max_body=f"{settings.dataset_chunk_mb}m",
                                       allowed_hosts=settings.allowed_hosts)
            nginx = frontdoor.start(door)
        print(f"Cauchy is up: http://{socket.gethostname()}:{args.port}/ (on this machine http://127.0.0.1:{args.port}/)"
              f"\n  {sign_in_hint(settings)}"
              f"\n  service log {settings.home / 'service.log'}; Ctrl-C stops everything (jobs, viewers, service, nginx)",
              flush=True)
        while not stop.wait(1):
            if service.poll() is not None or (nginx is not None and nginx.poll() is not None):
                print("the control service or nginx exited; stopping the rest", file=sys.stderr)
                return 1
        print("stopping: jobs save a checkpoint first (resume them later from the page)", flush=True)
        return 0
    finally:
        if service.poll() is None:
            stop_jobs(f"http://127.0.0.1:{service_port}/api/v1", headers)
        accounts.revoke_token(accounts.user(accounts.admin_name()).id, token_id)
        stop_service(service)
        if nginx is not None:
            frontdoor.stop(nginx)
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
