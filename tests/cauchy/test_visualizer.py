"""VisdomSink against a real Visdom server on 127.0.0.1, and with none at all."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cauchy.visualizer import BoundedSeries, JsonlSink, VisdomSink, build_sinks, make_event, read_events
from services.visdom_server import start_visdom

BASE_URL = "/visdom/job3"
pytestmark = pytest.mark.filterwarnings("ignore:The .warn. method is deprecated:DeprecationWarning")


def start(port: int, tmp_path: Path) -> subprocess.Popen:
    return start_visdom(port, BASE_URL, str(tmp_path / "env"), str(tmp_path / "visdom.log"))


def saved_traces(tmp_path: Path) -> dict[str, dict[str, list]]:
    """{window: {trace: [(x, y), ...]}} from the env file the sink saved."""
    env = json.loads((tmp_path / "env" / "main.json").read_text())
    return {win: {trace["name"]: list(zip(trace["x"], trace["y"])) for trace in content["content"]["data"]}
            for win, content in env["jsons"].items()}


def write_training(sink, steps: range) -> None:
    for step in steps:
        for name, value in [("loss", 1 / step), ("loss_cls", 0.5 / step), ("lr", 0.1),
                            ("images_per_s", 100.0), ("progress", step / 100), ("eta_s", 5.0)]:
            sink.write(make_event(name, value, step=step, epoch=step / 10, phase="train"))
        if step % 10 == 0:
            for name, value in [("top1", step / 100), ("loss", 2 / step)]:
                sink.write(make_event(name, value, step=step, epoch=step / 10, phase="val"))
            sink.flush()


@pytest.fixture
def visdom_port(free_port, tmp_path):
    proc = start(free_port, tmp_path)
    yield free_port
    proc.terminate()
    proc.wait(timeout=5)


def test_events_become_windows_and_the_env_is_saved(visdom_port, tmp_path):
    sink = VisdomSink(visdom_port, BASE_URL, interval=0.05)
    write_training(sink, range(1, 31))
    time.sleep(0.3)  # let a batch or two go out before the rest, as during training
    write_training(sink, range(31, 51))
    sink.close()

    traces = saved_traces(tmp_path)
    assert set(traces) == {"loss", "loss_cls", "lr", "images_per_s", "top1"}
    assert set(traces["loss"]) == {"train", "val"}
    assert traces["loss"]["train"] == [(step, 1 / step) for step in range(1, 51)]
    assert traces["loss"]["val"] == [(step, 2 / step) for step in (10, 20, 30, 40, 50)]
    assert traces["top1"]["val"][-1] == (50, 0.5)
    import visdom

    client = visdom.Visdom(server="http://127.0.0.1", port=visdom_port, base_url=BASE_URL,
                           use_incoming_socket=False, raise_exceptions=True)
    live = json.loads(client.get_window_data("lr", env="main"))
    assert live["content"]["data"][0]["x"] == list(range(1, 51))


def test_long_runs_stay_bounded_and_keep_the_last_step(visdom_port, tmp_path):
    sink = VisdomSink(visdom_port, BASE_URL, interval=0.05, max_points=20)
    for step in range(1, 1001):
        sink.write(make_event("loss", float(step), step=step, epoch=0.0, phase="train"))
        if step % 100 == 0:
            sink.flush()
            time.sleep(0.06)
    sink.close()

    points = saved_traces(tmp_path)["loss"]["train"]
    assert 10 <= len(points) <= 20
    assert points[-1][0] == 1000
    xs = [x for x, _ in points]
    assert xs == sorted(xs)
    assert all(abs(y - x) < 64 for x, y in points)  # bucket means of y = step stay near step


def test_series_halves_into_bucket_means():
    series = BoundedSeries(max_points=4)
    halved = [series.add(x, x) for x in (1, 2, 3, 4)]
    assert halved == [False, False, False, True]
    assert (series.xs, series.ys, series.stride) == ([2, 4], [1.5, 3.5], 2)
    series.add(5, 5)
    series.seal()
    assert (series.xs, series.ys) == ([2, 4, 5], [1.5, 3.5, 5])


def test_visdom_down_never_blocks_and_warns_once(free_port, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cauchy.visualizer")
    sink = VisdomSink(free_port, BASE_URL, interval=0.02, max_backoff=0.05)
    started = time.monotonic()
    write_training(sink, range(1, 101))
    assert time.monotonic() - started < 0.5
    deadline = time.monotonic() + 10
    while not caplog.records and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # several retries, all failing
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 1
    warnings = [r for r in caplog.records if r.name == "cauchy.visualizer"]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()


def test_points_written_while_down_are_drawn_when_visdom_comes_up(free_port, tmp_path, caplog):
    sink = VisdomSink(free_port, BASE_URL, interval=0.02, max_backoff=0.1)
    write_training(sink, range(1, 21))
    deadline = time.monotonic() + 10
    while not caplog.records and time.monotonic() < deadline:
        time.sleep(0.02)
    proc = start(free_port, tmp_path)
    try:
        write_training(sink, range(21, 31))
        sink.close()
        assert saved_traces(tmp_path)["loss"]["train"] == [(step, 1 / step) for step in range(1, 31)]
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_build_sinks_adds_visdom_only_with_a_port(tmp_path, free_port):
    plain = build_sinks(str(tmp_path))
    assert [type(s) for s in plain.sinks] == [JsonlSink]
    plain.close()
    both = build_sinks(str(tmp_path), free_port, BASE_URL)
    assert [type(s) for s in both.sinks] == [JsonlSink, VisdomSink]
    assert (both.sinks[1].port, both.sinks[1].base_url) == (free_port, BASE_URL)
    both.close()


def test_a_resumed_run_replays_its_metrics_into_visdom(visdom_port, tmp_path):
    before = build_sinks(str(tmp_path))
    write_training(before, range(1, 11))
    before.close()
    resumed = build_sinks(str(tmp_path), visdom_port, BASE_URL)
    write_training(resumed, range(11, 21))
    resumed.close()
    assert saved_traces(tmp_path)["loss"]["train"] == [(step, 1 / step) for step in range(1, 21)]
    assert len(read_events(str(tmp_path / "metrics.jsonl"))) == 20 * 6 + 2 * 2


def test_importing_the_visualizer_stays_cheap():
    code = "import sys, cauchy.visualizer; print(sorted({'visdom', 'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
