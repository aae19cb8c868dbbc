"""When a running job is expected to end, from its measured iteration speed: the tail of its metrics.jsonl
(the first event names ``max_iters``; the training events carry step and time). Read without torch."""
from __future__ import annotations

import json
from pathlib import Path

from cauchy import rundir
from services.jobs.outcome import read_tail

TAIL = 16 * 1024


def expected_end(run_dir: Path) -> float | None:
    """The time the job should reach its last iteration at its recent pace; None before two steps are seen."""
    path = run_dir / rundir.METRICS
    try:
        with open(path, encoding="utf-8") as fh:
            first = json.loads(fh.readline())
    except (OSError, ValueError):
        return None
    if first.get("name") != "max_iters":
        return None
    steps = []
    for line in read_tail(path, TAIL).splitlines()[1:]:  # the first line may be cut
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("phase") == "train" and isinstance(event.get("step"), (int, float)):
            steps.append((event["step"], event["time"]))
    if len(steps) < 2 or steps[-1][0] <= steps[0][0]:
        return None
    (s0, t0), (s1, t1) = steps[0], steps[-1]
    return t1 + (float(first["value"]) - s1) * (t1 - t0) / (s1 - s0)
