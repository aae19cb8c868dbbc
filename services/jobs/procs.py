"""Process handles the supervisor keeps: our own children (``Popen``) or processes adopted after a
restart (only ``psutil``), told apart from a recycled PID by their creation time."""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field

import psutil


@dataclass
class Proc:
    pid: int
    started: float  # psutil create_time
    popen: subprocess.Popen | None = None
    _ps: psutil.Process | None = field(default=None, repr=False)

    @classmethod
    def from_popen(cls, popen: subprocess.Popen) -> Proc:
        ps = psutil.Process(popen.pid)
        return cls(popen.pid, ps.create_time(), popen, ps)

    @classmethod
    def adopt(cls, pid: int | None, started: float | None) -> Proc | None:
        """The process ``pid`` if it is still the one created at ``started``, else None."""
        if not pid or started is None:
            return None
        try:
            ps = psutil.Process(pid)
            if abs(ps.create_time() - started) > 0.05 or ps.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return cls(pid, started, None, ps)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            return self._ps.is_running() and self._ps.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def tree(self) -> list[psutil.Process]:
        """This process and its descendants (empty once it is gone)."""
        try:
            return [self._ps, *self._ps.children(recursive=True)]
        except psutil.Error:
            return []

    def send(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:  # it just ended; the next watch records it
            pass

    def signal_group(self, signum: int) -> None:
        """Signal the whole process group this process leads (each runs in its own session)."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self, timeout: float = 0) -> None:
        if self.popen is not None:
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass

    def terminate_group(self, grace: float = 3.0) -> None:
        """SIGTERM, a short wait, then SIGKILL for the whole group."""
        self.signal_group(signal.SIGTERM)
        try:
            if self.popen is not None:
                self.popen.wait(grace)
            else:
                self._ps.wait(grace)
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            pass
        except psutil.Error:
            pass
        self.signal_group(signal.SIGKILL)
        self.reap(1)


def kill_leftovers(pgid: int | None, since: float | None) -> None:
    """SIGKILL what is left of a dead leader's process group: members created after the leader.

    Checked one by one, since after a reboot the number may be another program's group.
    """
    if not pgid or since is None:
        return
    for ps in psutil.process_iter(["create_time"]):
        try:
            if os.getpgid(ps.pid) == pgid and ps.info["create_time"] >= since - 0.05:
                ps.kill()
        except (ProcessLookupError, psutil.Error):
            continue


def find_by_argument(argument: str) -> Proc | None:
    """The process with ``argument`` on its command line (a job's own exit-file path is unique)."""
    for ps in psutil.process_iter(["cmdline", "create_time"]):
        if argument in (ps.info["cmdline"] or []):
            return Proc.adopt(ps.pid, ps.info["create_time"])
    return None
