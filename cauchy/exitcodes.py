"""Exit codes of ``run_tasks.py``, shared with the control service that reads them."""

OK = 0
CRASH = 1  # an unexpected exception; the traceback is on stderr
BAD_INPUT = 2  # bad hypes, data or arguments; one line "error: ..." on stderr
STOPPED = 3  # SIGTERM: a checkpoint was saved, then the task exited

NAMES = {OK: "succeeded", CRASH: "crashed", BAD_INPUT: "bad input", STOPPED: "stopped"}
