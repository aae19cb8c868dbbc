"""The files of ``python -m cauchy.datasets.tools.inspect_dataset`` and how to read its outcome: one place
for the framework, the control service and the page."""
from __future__ import annotations

from typing import Any

PROGRESS = "progress.json"  # {"phase": one of PHASES, "done": int, "total": int}, rewritten while it runs
REPORT = "report.json"  # ok, task, format, splits, class_names, counts, problems (the first MAX_PROBLEMS)
STATS = "stats.json"  # the statistics the page plots (docs/datasets.md)
PREVIEWS_DIR = "previews"  # <split>_<index>.jpg, the annotations drawn
PHASES = ("recognising", "reading", "checking", "done")
MAX_PROBLEMS = 100

# The outcomes. report.json is written on every path but a crash: {"ok": true, ...} when usable; with
# "ok": false, "recognised": false and "error" when the layout was not recognised; with "ok": false and
# "error" alone when the command refused its arguments (a split that cannot be made).
USABLE, NOT_USABLE, UNRECOGNISED = "usable", "not usable", "unrecognised"


def outcome(report: Any) -> str | None:
    """USABLE, NOT_USABLE or UNRECOGNISED, as ``report`` (report.json's contents) says; None when there is
    no report (the inspection crashed before writing it)."""
    if not isinstance(report, dict):
        return None
    if report.get("recognised") is False:
        return UNRECOGNISED
    return USABLE if report.get("ok") is True else NOT_USABLE
