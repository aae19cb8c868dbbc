"""Stopping the whole service on this machine: ``cauchy shutdown``.

Stopping ``python -m services`` / ``cauchy serve`` alone (Ctrl-C, SIGTERM) leaves its jobs and their
Visdom viewers running on purpose: the next start adopts them, so restarting the service loses no
work. ``cauchy shutdown`` asks the running service (SIGUSR1 to the pid in ``$CAUCHY_HOME/service.pid``)
to stop everything instead: every job stops as a user's stop would (checkpoint, grace, kill), queued
ones are cancelled, the viewers end, then the service exits.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from services.private import PRIVATE_FILE

PID_FILE = "service.pid"
SHUTDOWN_SIGNAL = signal.SIGUSR1
LEAVES_JOBS = ("stopping this service (Ctrl-C, SIGTERM) leaves its jobs and their viewers running on purpose: "
               "the next start adopts them; `cauchy shutdown` stops everything")


class ShutdownRequested(Exception):
    """Raised in the service's main thread by :data:`SHUTDOWN_SIGNAL`: stop every job, then exit."""


def write_pid(home: Path) -> Path:
    path = home / PID_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    return path


def remove_pid(home: Path) -> None:
    path = home / PID_FILE
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except FileNotFoundError:
        pass


def install_handler() -> None:
    def handle(_number: int, _frame: object) -> None:
        raise ShutdownRequested

    signal.signal(SHUTDOWN_SIGNAL, handle)


def stop_everything(svc: Any, timeout: float) -> list[int]:
    """Every active job stopped (queued: cancelled) and waited for up to ``timeout`` seconds, then every
    viewer shut; returns the ids of the jobs it stopped. ``svc`` is the app's ``Services``."""
    from services.jobs.stopping import AlreadyEnded, request_stop
    from services.jobs.store import ACTIVE, QUEUED

    rows, _ = svc.store.list([QUEUED, *ACTIVE], limit=100_000)
    ids = [row[0] for row in sorted(rows, key=lambda row: row[5] != QUEUED)]  # queued first: none starts meanwhile
    for job_id in ids:
        try:
            request_stop(svc.store, svc.supervisor.endings, job_id)
        except AlreadyEnded:
            continue
    svc.supervisor.wake()
    deadline = time.monotonic() + timeout
    while svc.supervisor.executor.all() and time.monotonic() < deadline:
        time.sleep(0.2)
    svc.supervisor.viewers.settle_all()  # a viewer still starting is stopped too
    for job_id, _ in svc.supervisor.viewers.items():
        svc.supervisor.viewers.stop(job_id)
    svc.supervisor.serving.terminate_all()  # deployments stay, and start again with the next service
    return ids


def request_shutdown(home: Path, timeout: float) -> str:
    """``cauchy shutdown``: signal the service whose pid ``home`` holds and wait for it to exit."""
    try:
        pid = int((home / PID_FILE).read_text().strip())
        proc = psutil.Process(pid)
        if not any("services" in part for part in proc.cmdline()):
            raise psutil.NoSuchProcess(pid)
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        raise SystemExit(f"error: no Cauchy service running for {home} (no live pid in {home / PID_FILE})") from None
    proc.send_signal(SHUTDOWN_SIGNAL)
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        raise SystemExit(f"error: the service (pid {pid}) is still stopping after {timeout:.0f} s") from None
    return f"stopped the service (pid {pid}), its jobs and their viewers"
