"""The job's Visdom server, started for real on 127.0.0.1 with the bundled assets, offline."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from services.visdom_server import (
    DEFAULT_STATIC_DIR,
    REPO_ROOT,
    VisdomAssetsMissing,
    VisdomStartError,
    check_static_dir,
    is_visdom_up,
    normalize_base_url,
    start_visdom,
)

BASE_URL = "/visdom/job7"


@pytest.fixture
def visdom(free_port: int, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int, float]]:
    """A running server: (process, port, seconds from start to its ready line)."""
    try:
        check_static_dir(DEFAULT_STATIC_DIR)
    except VisdomAssetsMissing as exc:
        pytest.fail(str(exc))
    started = time.monotonic()
    proc = start_visdom(free_port, BASE_URL, str(tmp_path / "env"), str(tmp_path / "visdom.log"))
    ready_s = time.monotonic() - started
    yield proc, free_port, ready_s
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read()


def run_server(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.visdom_server", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=30)


def test_page_and_every_asset_it_references_are_served(visdom):
    proc, port, ready_s = visdom
    assert ready_s < 5
    assert is_visdom_up(port, BASE_URL)
    assert not is_visdom_up(port, "/visdom/other")
    status, page = get(f"http://127.0.0.1:{port}{BASE_URL}/")
    assert status == 200
    # ../user/style.css is Visdom's user-settings handler (the browser resolves the ..), no asset
    assets = re.findall(rf'(?:src|href)=["\']?({BASE_URL}/static/[\w/.-]+?)[?"\'\s>]', page.decode())
    assets = [path for path in assets if ".." not in path]
    assert f"{BASE_URL}/static/js/main.js" in assets and len(assets) >= 15
    for path in assets:
        status, body = get(f"http://127.0.0.1:{port}{path}")
        assert status == 200 and body, path


def test_the_pages_websocket_answers_under_the_prefix(visdom):
    import websocket  # websocket-client, a dependency of visdom

    _, port, _ = visdom
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}{BASE_URL}/socket", timeout=5)
    try:
        assert json.loads(ws.recv())["command"] == "register"
    finally:
        ws.close()


def test_browsers_only_watch(visdom):
    """The task's POST /events draws; a browser's socket command to close that pane is ignored."""
    import websocket

    _, port, _ = visdom
    base = f"http://127.0.0.1:{port}{BASE_URL}"
    pane = {"data": [{"content": "loss", "type": "text"}], "win": "w1", "eid": "main", "opts": {}}
    assert requests.post(f"{base}/events", json=pane, timeout=5).text == "w1"
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}{BASE_URL}/socket", timeout=5)
    try:
        assert json.loads(ws.recv())["readonly"] is True
        ws.send(json.dumps({"cmd": "close", "data": "w1", "eid": "main"}))
    finally:
        ws.close()  # waits for the server's close frame: the command before it has been handled
    assert requests.post(f"{base}/win_exists", json={"win": "w1", "eid": "main"}, timeout=5).text == "true"


def test_server_stays_small_without_torch(visdom):
    proc, _, _ = visdom
    maps = Path(f"/proc/{proc.pid}/maps").read_text()
    assert "torch" not in maps
    rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{proc.pid}/status").read_text())[1])
    assert rss_kb < 80 * 1024


def test_port_taken_is_a_clear_error(free_port, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        result = run_server("--port", str(free_port), "--env-path", str(tmp_path))
        assert result.returncode == 2
        assert f"error: port {free_port} is already in use" in result.stderr
        with pytest.raises(VisdomStartError, match="already in use"):
            start_visdom(free_port, "", str(tmp_path / "env"), str(tmp_path / "visdom.log"))


def test_missing_assets_name_the_fix(free_port, tmp_path):
    result = run_server("--port", str(free_port), "--env-path", str(tmp_path),
                        "--static-dir", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert "make visdom-assets" in result.stderr


def test_sigterm_exits_cleanly_and_frees_the_port(visdom):
    proc, port, _ = visdom
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_root_base_url(free_port, tmp_path):
    proc = start_visdom(free_port, "/", str(tmp_path / "env"), str(tmp_path / "visdom.log"))
    try:
        assert is_visdom_up(free_port, "")
        assert get(f"http://127.0.0.1:{free_port}/static/js/main.js")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.mark.parametrize("given, expected", [
    ("", ""), ("/", ""), ("/visdom/3", "/visdom/3"), ("/visdom/3/", "/visdom/3"), ("visdom/3", "/visdom/3"),
])
def test_normalize_base_url(given, expected):
    assert normalize_base_url(given) == expected
