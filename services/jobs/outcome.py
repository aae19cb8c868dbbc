"""How a finished task ended, in words a user can act on: state, exit code, signal and reason."""
from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path

from cauchy import exitcodes
from services.jobs.store import FAILED, STOPPED, SUCCEEDED

TAIL_BYTES = 16 * 1024
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*)$|^(error: .*)$")


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str
    exit_code: int | None = None
    signal: int | None = None


def read_tail(path: Path, size: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def last_error_line(log_tail: str) -> str | None:
    """The exception line of the last traceback (or ``error: ...`` line) in a log tail."""
    for line in reversed(log_tail.splitlines()):
        match = _EXCEPTION_LINE.match(line.strip())
        if match:
            return match.group(0)
    return None


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def judge(exit_code: int | None, signum: int | None, stderr_tail: str, *, stop_requested: bool,
          killed_by_us: str | None = None) -> Outcome:
    """The outcome from the task's exit status; ``killed_by_us`` is why the supervisor killed it, if it did."""
    if killed_by_us:
        state = STOPPED if stop_requested else FAILED
        return Outcome(state, killed_by_us, exit_code, signum)
    if signum is not None:
        hint = " (SIGKILL: out of memory, or killed by someone)" if signum == signal.SIGKILL else ""
        state = STOPPED if stop_requested and signum in (signal.SIGTERM, signal.SIGINT) else FAILED
        return Outcome(state, f"killed by signal {signum} {signal_name(signum)}{hint}", None, signum)
    if exit_code == exitcodes.OK:
        return Outcome(SUCCEEDED, "finished", exit_code)
    if exit_code == exitcodes.STOPPED:
        return Outcome(STOPPED, "stopped after saving a checkpoint", exit_code)
    error = last_error_line(stderr_tail)
    name = exitcodes.NAMES.get(exit_code, "failed") if exit_code is not None else "ended"
    detail = f": {error}" if error else ""
    return Outcome(FAILED, f"{name} (exit code {exit_code}){detail}", exit_code)
