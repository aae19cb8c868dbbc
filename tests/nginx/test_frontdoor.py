"""nginx in front of the service: the routes, a job's Visdom with its websocket, what is refused, and a
weights download resumed with a Range request."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests
import websocket  # websocket-client, a dependency of visdom
from stack import REPO, frontdoor, make_hypes

from services.weights_store import publish, set_visibility


def test_routes(stack):
    page = requests.get(stack.url + "/", timeout=10)
    assert page.status_code == 200 and "<title>Cauchy</title>" in page.text
    script = requests.get(stack.url + "/assets/app.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    health = requests.get(stack.url + "/api/v1/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    legacy = requests.post(stack.url + "/cauchy/check_viz_started", data={"viz_port": "1"}, timeout=10)
    assert legacy.json()["code"] == "100401"  # a token is needed
    legacy = requests.post(stack.url + "/cauchy/check_viz_started", data={"viz_port": "1", "token": stack.service.token},
                           timeout=10)
    assert legacy.json()["code"] == "100400"
    manifest = requests.get(stack.url + "/weights/", timeout=10)
    assert manifest.status_code == 200 and manifest.json() == {"weights": []}
    assert requests.get(stack.url + "/_frontdoor/visdom/1", timeout=10).status_code == 404  # internal only
    conf = stack.door.conf.read_text()
    assert str(stack.door.prefix) in conf and "/etc/nginx/nginx.conf" not in conf and "listen 127.0.0.1:" in conf


def test_a_jobs_visdom_and_its_websocket(stack):
    job = stack.service.submit(make_hypes("run"))
    stack.service.wait(job["id"], lambda j: j["state"] == "running" and j["visdom"]["up"])
    base = f"{stack.url}/visdom/{job['id']}/"
    auth = {"Authorization": f"Bearer {stack.service.token}"}
    assert requests.get(base, timeout=10).status_code == 403  # not signed in
    page = requests.get(base, headers=auth, timeout=10)
    assert page.status_code == 200 and "<title>visdom</title>" in page.text.lower()
    assert requests.get(f"{stack.url}/visdom/{job['id']}", timeout=10, allow_redirects=False).status_code == 301
    ws = websocket.create_connection(base.replace("http://", "ws://") + "socket", timeout=10,
                                     header=[f"Authorization: Bearer {stack.service.token}"])
    try:
        register = json.loads(ws.recv())
        assert register["command"] == "register" and register["readonly"] is True  # its commands are ignored
    finally:
        ws.close()
    # The page's own reads work; the write endpoints only the task may use are refused.
    assert requests.post(base + "env/main", data=json.dumps({"sid": "x"}), headers=auth, timeout=10).status_code == 200
    for path in ("events", "update", "close", "save", "delete_env", "win_data", "fork_env", "vis_socket"):
        assert requests.post(base + path, data="{}", headers=auth, timeout=10).status_code == 403, path
    stack.service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    stack.service.wait_ended(job["id"])


def test_no_other_port_is_reachable(stack):
    service_port = stack.door.service.rsplit(":", 1)[1]
    for path in ("/visdom/999/", f"/visdom/{service_port}/", "/visdom/8140/", "/visdom/1/api/v1/health"):
        response = requests.get(stack.url + path, timeout=10)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"
    assert requests.get(stack.url + "/visdom/x/", timeout=10).status_code == 404


@pytest.fixture
def big_weights(stack, tmp_path: Path) -> dict:
    """Weights of about 8 MB published through the store (a checkpoint exported by a child process)."""
    import torch

    checkpoint = tmp_path / "best.pth"
    torch.save({"model": {"w": torch.randn(2048, 1024)}, "class_names": ["a", "b"]}, checkpoint)
    hypes = {"task": "cls", "network": {"model_name": "small_cnn"}, "train": {}}
    return publish(stack.service.settings.home / "weights", "big", checkpoint, hypes=hypes, metrics={"top1": 0.5},
                   source_job=None)


def test_weights_download_resumed_with_range(stack, big_weights):
    url = f"{stack.url}/weights/{big_weights['file']}"
    half = big_weights["size"] // 2
    first = requests.get(url, headers={"Range": f"bytes=0-{half - 1}"}, timeout=30)
    assert first.status_code == 206 and len(first.content) == half
    rest = requests.get(url, headers={"Range": f"bytes={half}-"}, timeout=30)
    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes {half}-{big_weights['size'] - 1}/{big_weights['size']}"
    assert hashlib.sha256(first.content + rest.content).hexdigest() == big_weights["sha256"]
    manifest = requests.get(f"{stack.url}/weights/", timeout=10).json()
    assert [entry["name"] for entry in manifest["weights"]] == ["big"]
    assert requests.get(f"{stack.url}/weights/.lock", timeout=10).status_code == 403  # no entry's file
    # Private weights: neither listed nor served to others.
    set_visibility(stack.service.settings.home / "weights", "big", "private")
    assert requests.get(f"{stack.url}/weights/", timeout=10).json() == {"weights": []}
    assert requests.get(url, headers={"Range": "bytes=0-9"}, timeout=30).status_code == 403
    assert stack.service.call("GET", "/api/v1/weights").json()["weights"][0]["name"] == "big"  # the admin sees them


def test_rendered_config_keeps_to_its_prefix(tmp_path: Path):
    door = frontdoor.FrontDoor("", 18999, "127.0.0.1:18998", tmp_path / "home")
    text = frontdoor.render(door).read_text()
    assert "{{" not in text and "listen 18999;" in text and f"alias {tmp_path / 'home' / 'weights'}/$weights_file;" in text
    for line in text.splitlines():
        if line.strip().startswith(("pid ", "error_log ", "access_log ", "client_body_temp_path ", "proxy_temp_path ")):
            assert str(door.prefix) in line, line
    assert f"root {REPO / 'webui'};" in text


def test_without_nginx_the_service_serves_the_page_and_the_charts_link(stack):
    """The fallback of ``make run`` when nginx is missing: the service answers on the front door's port."""
    base = stack.service.url
    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200 and "<title>Cauchy</title>" in page.text
    assert requests.get(base + "/assets/app.css", timeout=10).status_code == 200
    assert requests.get(base + "/visdom/1/", timeout=10).status_code == 401
    job = stack.service.submit(make_hypes("run"))
    running = stack.service.wait(job["id"], lambda j: j["state"] == "running" and j["visdom"]["up"])
    moved = stack.service.call("GET", f"/visdom/{job['id']}/", headers={"Host": "evil.example"}, allow_redirects=False)
    assert moved.status_code == 400 and moved.json()["error"]["code"] == "bad_host"
    moved = stack.service.call("GET", f"/visdom/{job['id']}/", allow_redirects=False)
    # On the host of CAUCHY_PUBLIC_URL, never the request's
    assert moved.status_code == 302 and moved.headers["Location"] == f"http://localhost:{running['visdom']['port']}/visdom/{job['id']}/"
    stack.service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    stack.service.wait_ended(job["id"])
