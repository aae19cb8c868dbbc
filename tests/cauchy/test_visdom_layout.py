"""The job's charts: the main ones (loss, the headline metric, lr) are made first, so Visdom lays them
out in its top row, at a size two rows of which fit the job page's frame; constants are not plotted."""
from __future__ import annotations

import json

import pytest

from cauchy.visualizer import PANE, VisdomSink, make_event
from services.visdom_server import start_visdom

BASE_URL = "/visdom/job5"
pytestmark = pytest.mark.filterwarnings("ignore:The .warn. method is deprecated:DeprecationWarning")


@pytest.fixture
def visdom_port(free_port, tmp_path):
    proc = start_visdom(free_port, BASE_URL, str(tmp_path / "env"), str(tmp_path / "visdom.log"))
    yield free_port
    proc.terminate()
    proc.wait(timeout=5)


def test_main_charts_come_first_at_pane_size_and_count_is_not_a_chart(visdom_port, tmp_path) -> None:
    sink = VisdomSink(visdom_port, BASE_URL, interval=0.05, first=[("loss", "train"), ("miou", "val"), ("lr", "train")])
    for step in range(1, 6):
        for name in ("images_per_s", "loss_aux", "lr", "loss"):
            sink.write(make_event(name, 1.0 / step, step=step, epoch=0.0, phase="train"))
        sink.flush()
    for name, value in (("count", 4.0), ("pixel_acc", 0.9), ("miou", 0.5)):
        sink.write(make_event(name, value, step=5, epoch=0.0, phase="val"))
    sink.close()
    env = json.loads((tmp_path / "env" / "main.json").read_text())
    windows = list(env["jsons"])
    assert windows[:3] == ["loss", "miou", "lr"] and "count" not in windows
    assert set(windows) == {"loss", "miou", "lr", "images_per_s", "loss_aux", "pixel_acc"}
    for name in windows:
        pane = env["jsons"][name]
        assert (pane["width"], pane["height"]) == (PANE["width"], PANE["height"]), name
    loss = {trace["name"]: trace["x"] for trace in env["jsons"]["loss"]["content"]["data"]}
    assert loss == {"train": [1, 2, 3, 4, 5]}  # the placeholder point is gone once the data came
    miou = env["jsons"]["miou"]["content"]["data"]
    assert [(t["name"], t["x"], t["y"]) for t in miou] == [("val", [5], [0.5])]


def test_the_viewer_serves_the_embedding_style(visdom_port) -> None:
    """Visdom's top bar stays one line in the page's frame (it wrapped over the top-right chart)."""
    import requests

    from services.visdom_server import EMBEDDING_CSS

    css = requests.get(f"http://127.0.0.1:{visdom_port}{BASE_URL}/user/style.css", timeout=10)
    assert css.status_code == 200 and EMBEDDING_CSS.strip() in css.text
