"""The submission's component check (``cauchy.check_worker``): every model, loss, transform and method
parameter built as training will build it, so a job the service queues does not fail later on a key.
The check imports torch, so it runs in one long-lived child process, started at the first submission
and restarted if it dies; the service itself stays torch-free."""
from __future__ import annotations

import json
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class CheckUnavailable(RuntimeError):
    """The check process died twice on one document."""


class ComponentChecker:
    CACHE_SIZE = 256  # documents whose answer is kept: a burst of the same hypes is checked once

    def __init__(self, command: Sequence[str], cwd: Path) -> None:
        self.command, self.cwd = tuple(command), cwd
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()

    def start(self) -> None:
        """Starts the check process now (it imports torch for some seconds), not at the first submission."""
        with self._lock:
            self._process()

    def _process(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(self.command, cwd=self.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        return self._proc

    def check(self, hypes: dict[str, Any]) -> list[tuple[str, str]]:
        """``(hypes key, message)`` for every problem of the resolved ``hypes``; empty when it builds."""
        line = json.dumps(hypes, sort_keys=True) + "\n"
        with self._lock:
            if line in self._answers:
                self._answers.move_to_end(line)
                return self._answers[line]
            for _ in range(2):
                proc = self._process()
                try:
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write(line)
                    proc.stdin.flush()
                    answer = proc.stdout.readline()
                except (BrokenPipeError, OSError):
                    answer = ""
                if answer:
                    problems = [(e["key"], e["message"]) for e in json.loads(answer)["errors"]]
                    self._answers[line] = problems
                    if len(self._answers) > self.CACHE_SIZE:
                        self._answers.popitem(last=False)
                    return problems
                self._stop(proc)
        raise CheckUnavailable("the component check process stopped twice")

    def _stop(self, proc: subprocess.Popen[str]) -> None:
        proc.kill()
        proc.wait()
        self._proc = None

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()  # the worker's loop ends on end of input
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._stop(self._proc)
            self._proc = None
