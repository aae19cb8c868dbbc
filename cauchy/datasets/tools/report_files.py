"""The files and exit codes of ``python -m cauchy.datasets.tools.inspect_dataset``: one place for the
framework, the control service and the page."""
from __future__ import annotations

PROGRESS = "progress.json"  # {"phase": one of PHASES, "done": int, "total": int}, rewritten while it runs
REPORT = "report.json"  # ok, task, format, splits, class_names, counts, problems (the first MAX_PROBLEMS)
STATS = "stats.json"  # the statistics the page plots (docs/datasets.md)
PREVIEWS_DIR = "previews"  # <split>_<index>.jpg, the annotations drawn
PHASES = ("recognising", "reading", "checking", "done")
MAX_PROBLEMS = 100

USABLE, UNRECOGNISED, NOT_USABLE = 0, 2, 3  # exit codes (2 also when --make-split is refused, with the reason)
