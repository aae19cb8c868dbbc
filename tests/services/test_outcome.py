"""A task's exit status told in words."""
from __future__ import annotations

import signal

from services.jobs.outcome import judge, last_error_line

TRACEBACK = """Traceback (most recent call last):
  File "run_tasks.py", line 3, in <module>
    main()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB
"""


def test_exit_codes_and_signals():
    assert judge(0, None, "", stop_requested=False).state == "succeeded"
    stopped = judge(3, None, "", stop_requested=True)
    assert stopped.state == "stopped" and "checkpoint" in stopped.reason
    crash = judge(1, None, TRACEBACK, stop_requested=False)
    assert crash.state == "failed" and crash.reason == (
        "crashed (exit code 1): torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    bad = judge(2, None, "error: data.data_dir: missing\n", stop_requested=False)
    assert bad.reason == "bad input (exit code 2): error: data.data_dir: missing"
    killed = judge(None, signal.SIGKILL, "", stop_requested=False)
    assert killed.state == "failed" and killed.signal == 9 and "SIGKILL" in killed.reason
    ours = judge(None, signal.SIGKILL, "", stop_requested=False, killed_by_us="killed for memory: 900 MB")
    assert ours.state == "failed" and ours.reason == "killed for memory: 900 MB"


def test_last_error_line_picks_the_exception():
    assert last_error_line("noise\nValueError: bad\nmore noise\n") == "ValueError: bad"
    assert last_error_line("all fine\n") is None
