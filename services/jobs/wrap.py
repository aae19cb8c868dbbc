"""Run a task and write how it ended to a file: ``python wrap.py EXIT_FILE -- ARGV...``.

The service is the parent of this small process, not of the task, so the task's exit code or
signal survives a restart of the service: a job adopted by a new service instance (which cannot
``wait()`` for it) still ends with the true reason. SIGTERM and SIGINT are passed on to the task.
Run as a script (stdlib only, no package imports) so it starts in a few milliseconds; the Ray
executor's node runner (``services.executors.node_run``) calls ``run_recorded`` for the same record.
"""
import json
import os
import signal
import subprocess
import sys
from typing import Any


def status_of(code: int) -> dict[str, int | None]:
    """``{exit_code, signal}`` of a process's return code (negative: the signal that ended it)."""
    return {"exit_code": code if code >= 0 else None, "signal": -code if code < 0 else None}


def run_recorded(command: list[str], exit_file: str, **popen: Any) -> int:
    """Run ``command`` (``popen``: Popen's keyword arguments), passing SIGTERM/SIGINT on, and write its
    ``{pid, exit_code, signal}`` to ``exit_file`` atomically; the code to exit with."""
    child = subprocess.Popen(command, **popen)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _frame: child.send_signal(s))
    code = child.wait()
    status = {"pid": child.pid, **status_of(code)}
    tmp = exit_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(status, fh)
    os.replace(tmp, exit_file)
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    exit_file, sep, command = argv[0], argv[1], argv[2:]
    if sep != "--" or not command:
        print("usage: wrap.py EXIT_FILE -- ARGV...", file=sys.stderr)
        return 2
    return run_recorded(command, exit_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
