"""A run resumed at iteration N keeps the recorded events up to N and drops the later ones, which it
trains again: metrics.jsonl then holds the whole run once."""
from __future__ import annotations

import json

from cauchy import rundir
from cauchy.visualizer import build_sinks, read_events


def test_events_past_the_resumed_iteration_are_dropped_before_appending(tmp_path) -> None:
    path = tmp_path / rundir.METRICS
    path.write_text("".join(json.dumps({"step": s, "epoch": 0.0, "phase": "train", "name": "loss", "value": 1.0,
                                        "time": 0.0}) + "\n" for s in range(10)))
    sink = build_sinks(str(tmp_path), resumed_at=6)
    sink.write({"step": 7, "epoch": 0.0, "phase": "train", "name": "loss", "value": 0.5, "time": 1.0})
    sink.close()
    assert [e["step"] for e in read_events(str(path))] == [0, 1, 2, 3, 4, 5, 6, 7]
    build_sinks(str(tmp_path)).close()  # a fresh run appends, dropping nothing
    assert len(read_events(str(path))) == 8
