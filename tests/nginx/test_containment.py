"""Each finding of the containment issue, sent as the exact request that once worked, through nginx:
what a job may read and fetch, what one request may cost, and bad input that answered 500."""
from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from stack import Stack, fast_settings, make_hypes

from cauchy import rundir
from services.jobs import files
from services.jobs.store import SUCCEEDED

TOO_BIG_ID = 2**63  # one past what the database stores
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the module; URLs under the service's own address are "allowed" by prefix, so that
    the address check after resolution is what refuses them."""
    home = tmp_path_factory.mktemp("containment") / "home"
    live = Stack(fast_settings(home, weights_url_prefixes=("http://127.0.0.1:", "http://localhost:"),
                               submit_rate_per_min=1000, max_queued_per_user=1000, max_viewers_per_user=1))
    yield live
    live.close()


def send(door: Stack, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    """A request through nginx with a token (the admin's unless another is given)."""
    headers = {"Authorization": f"Bearer {token or door.service.token}", **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", 30)
    return requests.request(method, door.url + path, headers=headers, **kwargs)


def post(door: Stack, path: str, **kwargs: Any) -> requests.Response:
    return send(door, "POST", path, **kwargs)


def get(door: Stack, path: str, **kwargs: Any) -> requests.Response:
    return send(door, "GET", path, **kwargs)


def refused(response: requests.Response, status: int, field: str | None) -> dict[str, Any]:
    """The JSON error shape with ``status`` naming ``field``."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"} and error["field"] == field, error
    return error


def submit(door: Stack, hypes: Any, **fields: Any) -> requests.Response:
    return post(door, "/api/v1/jobs", json={"hypes": hypes, **fields})


def with_keys(**dotted: Any) -> dict[str, Any]:
    """The stand-in hypes with ``a.b=value`` entries set."""
    hypes = make_hypes("ok", 1)
    for key, value in dotted.items():
        node = hypes
        *parents, last = key.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return hypes


def legacy(door: Stack, endpoint: str, **data: Any) -> dict[str, Any]:
    response = post(door, f"/cauchy/{endpoint}", data=data)
    assert response.status_code == 200, response.text
    return response.json()


def trained_job(door: Stack) -> int:
    """A succeeded job with a checkpoint, written straight to the store (no scheduler involved)."""
    store = door.service.app.extensions["cauchy"].store
    job = store.add(name="trained", user=door.service.name, phase="train", priority=0, gpus_requested=0,
                    hypes=make_hypes("ok", 1), overrides=[])
    store.update(job.id, state=SUCCEEDED, ended_at=time.time())
    checkpoint = files.job_dir(door.service.settings.jobs_dir, job.id) / rundir.LATEST_CHECKPOINT
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("{}")
    return job.id


def inputs_written(door: Stack) -> list[Path]:
    root = door.service.settings.home / "inputs"
    return list(root.iterdir()) if root.is_dir() else []


# ----- what a job may read


def test_data_dir_outside_the_data_roots_is_refused(door):
    for path in ("/etc", "data/../../../../etc", "data/\x00x"):
        refused(submit(door, with_keys(data__data_dir=path)), 400, "hypes.data.data_dir")
    link = door.service.settings.datasets_dir / "sneaky"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/etc")
    error = refused(submit(door, with_keys(data__data_dir=str(link))), 400, "hypes.data.data_dir")
    assert "CAUCHY_DATA_ROOTS" in error["message"]
    stored = door.service.settings.datasets_dir / "digits"  # a stored dataset is named with data.dataset
    stored.mkdir()
    error = refused(submit(door, with_keys(data__data_dir=str(stored))), 400, "hypes.data.data_dir")
    assert "data.dataset" in error["message"]
    assert submit(door, make_hypes("ok", 1)).status_code == 201  # the checkout's data/, as the templates use


def test_legacy_test_batch_dir_outside_the_data_roots_is_refused(door):
    job_id = trained_job(door)
    reply = legacy(door, "test_batch", job_id=str(job_id), dir="/etc")
    assert reply["code"] == "100400" and reply["content"].startswith("dir:")


# ----- what a job may fetch


def test_pretrained_local_paths_are_refused(door):
    other = trained_job(door)
    checkpoint = files.job_dir(door.service.settings.jobs_dir, other) / rundir.LATEST_CHECKPOINT
    for ref in ("/etc/passwd", str(checkpoint), "../var/x.pth"):
        error = refused(submit(door, with_keys(network__pretrained=ref)), 400, "hypes.network.pretrained")
        assert error["code"] == "forbidden_path"


def test_pretrained_url_to_the_service_itself_is_refused_after_resolution(door):
    for url in (door.service.url + "/api/v1/health", door.service.url.replace("127.0.0.1", "localhost") + "/x"):
        error = refused(submit(door, with_keys(network__pretrained=url)), 400, "hypes.network.pretrained")
        assert "loopback" in error["message"]
    error = refused(submit(door, with_keys(network__pretrained="http://example.com/w.pth")), 400,
                    "hypes.network.pretrained")
    assert "allowed URL prefix" in error["message"]


def test_pretrained_job_reference_and_weights_name(door):
    source = trained_job(door)
    job = submit(door, with_keys(network__pretrained=f"job:{source}"))
    assert job.status_code == 201, job.text
    door.service.wait_ended(job.json()["id"])
    stdout = door.service.call("GET", f"/api/v1/jobs/{job.json()['id']}/logs").json()["text"]
    policy = json.loads(stdout.split("weights_policy=", 1)[1].splitlines()[0])  # what the task process was given
    checkpoint = files.job_dir(door.service.settings.jobs_dir, source) / rundir.LATEST_CHECKPOINT
    assert policy["aliases"] == {f"job:{source}": str(checkpoint)}
    assert policy["local_paths"] is False and policy["public_only"] is True and policy["max_bytes"] > 0
    refused(submit(door, with_keys(network__pretrained=f"job:{TOO_BIG_ID}")), 400, "hypes.network.pretrained")
    refused(submit(door, with_keys(network__pretrained="job:999999")), 400, "hypes.network.pretrained")
    refused(submit(door, with_keys(network__pretrained="nothing_published")), 400, "hypes.network.pretrained")


# ----- what one request may cost


@pytest.mark.slow
def test_sixteen_waiting_test_single_requests_leave_the_service_answering(tmp_path):
    """No CPU slot: every predict job stays queued, so each request would wait its whole timeout."""
    live = Stack(fast_settings(tmp_path / "home", cpu_slots=0, submit_rate_per_min=1000))
    try:
        source = trained_job(live)
        started = threading.Barrier(17)

        def wait_one(_: int) -> dict[str, Any]:
            started.wait()
            return legacy(live, "test_single", job_id=str(source), image=PNG, timeout="25")

        with ThreadPoolExecutor(16) as pool:
            replies = pool.map(wait_one, range(16))
            started.wait()
            health = get(live, "/api/v1/health", timeout=10)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            replies = list(replies)
        assert {reply["code"] for reply in replies} == {"100408"}  # still queued: poll the job
        assert all(reply["content"]["job_id"] for reply in replies)
    finally:
        live.close()


def test_a_waiting_request_stops_when_its_client_goes_away(tmp_path):
    live = Stack(fast_settings(tmp_path / "home", cpu_slots=0))
    try:
        source = trained_job(live)
        with pytest.raises(requests.ReadTimeout):
            post(live, "/cauchy/test_single", data={"job_id": source, "image": PNG, "timeout": 50}, timeout=(10, 2))
        jobs = live.service.call("GET", "/api/v1/jobs", params={"limit": 1}).json()["jobs"]
        predict = live.service.wait(jobs[0]["id"], lambda job: job["state"] == "stopped", timeout=20)
        assert predict["phase"] == "predict"
        live.service.wait(predict["id"], lambda job: not inputs_written(live), timeout=20)  # its image is deleted
    finally:
        live.close()


def test_submission_limits_name_their_key(door):
    cores = door.service.settings.cores_per_job
    for key, value, field in (("data__workers", cores + 1, "hypes.data.workers"),
                              ("train__batch_size", 100_000, "hypes.train.batch_size"),
                              ("solver__max_iters", 10**9, "hypes.solver.max_iters"),
                              ("solver__checkpoint", {"keep": 1000}, "hypes.solver.checkpoint.keep")):
        error = refused(submit(door, with_keys(**{key: value})), 400, field)
        assert error["code"] == "over_limit" and "CAUCHY_" in error["message"]
    epochs = make_hypes("ok", 1)
    epochs["solver"] = {"max_epoch": 10**6, "lr": {"base_lr": 0.1}}
    refused(submit(door, epochs), 400, "hypes.solver.max_epoch")
    refused(submit(door, with_keys(data__params={"blob": "x" * 300_000})), 400, "hypes")


def test_queued_jobs_and_submission_rate_are_limited_per_user(tmp_path):
    live = Stack(fast_settings(tmp_path / "home", run_jobs=False, max_queued_per_user=2, submit_rate_per_min=2))
    try:
        tokens = {name: live.service.as_user(name).token for name in ("flood", "calm")}

        def one(user: str) -> requests.Response:
            return post(live, "/api/v1/jobs", json={"hypes": make_hypes("ok", 1)}, token=tokens[user])

        assert [one("flood").status_code for _ in range(2)] == [201, 201]
        refused(one("flood"), 429, "user")
        assert one("calm").status_code == 201  # another user is not held back
        for job in live.service.call("GET", "/api/v1/jobs", params={"user": "flood"}).json()["jobs"]:
            live.service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
        too_fast = one("flood")  # the queue is empty now, but two were taken within the minute
        error = refused(too_fast, 429, "user")
        assert "CAUCHY_SUBMIT_RATE_PER_MIN" in error["message"] and int(too_fast.headers["Retry-After"]) > 0
    finally:
        live.close()


def test_visdom_env_creation_and_other_routes_are_refused(door):
    job = door.service.submit(make_hypes("run"))
    door.service.wait(job["id"], lambda j: j["state"] == "running" and j["visdom"]["up"])
    base = f"/visdom/{job['id']}/"
    assert post(door, base + "env/x", data=json.dumps({"eid": "x"})).status_code == 403
    assert post(door, base + "env/main", data=json.dumps({"sid": "s"})).status_code == 200
    for method, path in (("POST", "user/x"), ("POST", "env_state"), ("GET", "win_data"), ("POST", "win_hash"),
                         ("POST", "events"), ("GET", "delete_env"), ("POST", "save"), ("PUT", "env/main")):
        assert send(door, method, base + path, data="{}").status_code == 403, (method, path)
    assert get(door, base).status_code == 200
    door.service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    door.service.wait_ended(job["id"])
    assert door.service.call("POST", f"/api/v1/jobs/{job['id']}/visdom").status_code == 200


def test_viewers_of_ended_jobs_are_limited_per_user(door):
    viewer = door.service.as_user("viewer")
    ids = []
    for _ in range(2):
        job = viewer.submit(make_hypes("ok", 1))
        ids.append(door.service.wait_ended(job["id"])["id"])
    for job_id in ids:  # their viewers linger after the end: close them, as an idle page would
        viewer.call("DELETE", f"/api/v1/jobs/{job_id}/visdom")
    assert post(door, f"/api/v1/jobs/{ids[0]}/visdom", token=viewer.token).status_code == 200
    refused(post(door, f"/api/v1/jobs/{ids[1]}/visdom", token=viewer.token), 429, None)
    assert post(door, f"/api/v1/jobs/{ids[0]}/visdom", token=viewer.token).status_code == 200  # its own again
    viewer.call("DELETE", f"/api/v1/jobs/{ids[0]}/visdom")
    assert post(door, f"/api/v1/jobs/{ids[1]}/visdom", token=viewer.token).status_code == 200


# ----- bad input that answered 500


def test_ids_past_the_database_range(door):
    for path in (f"/api/v1/jobs/{TOO_BIG_ID}", f"/api/v1/jobs/{TOO_BIG_ID}/metrics"):
        refused(get(door, path), 404, None)
    refused(post(door, f"/api/v1/jobs/{TOO_BIG_ID}/stop"), 404, None)
    refused(submit(door, make_hypes(), phase="test", from_job=TOO_BIG_ID), 400, "from_job")


def test_hypes_names_with_nul_or_5000_characters(door):
    for name in ("cls/x\x00.json", "a" * 5000):
        refused(submit(door, name), 400, "hypes")


def test_deep_bodies_and_deep_override_keys(door):
    deep = '{"hypes": ' + "[" * 100_000 + "]" * 100_000 + "}"
    refused(post(door, "/api/v1/jobs", data=deep, headers={"Content-Type": "application/json"}), 400, None)
    nested = '{"hypes": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}"
    assert post(door, "/api/v1/jobs", data=nested, headers={"Content-Type": "application/json"}).status_code == 400
    key = ".".join(["a"] * 2000) + "=1"
    assert submit(door, make_hypes(), overrides=[key]).status_code == 400


def test_metrics_since_inside_a_line(door):
    job = door.service.wait_ended(door.service.submit(make_hypes("ok", 2))["id"])
    refused(get(door, f"/api/v1/jobs/{job['id']}/metrics", params={"since": 3}), 400, "since")
    whole = get(door, f"/api/v1/jobs/{job['id']}/metrics").json()
    again = get(door, f"/api/v1/jobs/{job['id']}/metrics", params={"since": whole["next"]})
    assert again.status_code == 200 and again.json()["events"] == []


def test_legacy_priority_and_timeout_out_of_range_write_nothing(door):
    source = trained_job(door)
    before = inputs_written(door)
    for extra in ({"priority": str(2**63)}, {"timeout": str(10**400)}):
        reply = legacy(door, "test_single", job_id=str(source), image=PNG, **extra)
        assert reply["code"] == "100400", reply
    assert inputs_written(door) == before


def test_infinite_base_lr_is_refused_and_never_served(door):
    for literal in ("Infinity", "1e999", "NaN", "-Infinity"):
        text = json.dumps({"hypes": make_hypes()}).replace('"base_lr": 0.1', f'"base_lr": {literal}')
        response = post(door, "/api/v1/jobs", data=text, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (literal, response.text)
    refused(submit(door, make_hypes(), overrides=["solver.lr.base_lr=1e999"]), 400, "hypes.solver.lr.base_lr")
    listing = get(door, "/api/v1/jobs", params={"limit": 500})
    json.loads(listing.text, parse_constant=lambda name: pytest.fail(f"served {name}"))


def test_control_characters_and_long_names(door):
    for fields in ({"name": "\x1b[31mred"}, {"name": "n" * 5000}, {"user": "bob\x07"}, {"user": "u" * 5000},
                   {"name": "right\u202eto left"}):
        key = next(iter(fields))
        refused(submit(door, make_hypes(), **fields), 400, key)


def test_weights_names_are_matched_whole(door):
    source = trained_job(door)
    error = refused(post(door, f"/api/v1/jobs/{source}/publish", json={"name": "ok\n"}), 400, "name")
    assert error["code"] == "invalid"
    assert not list((door.service.settings.home / "weights").glob("ok*"))


def test_a_failed_publish_shows_no_traceback_or_server_path(door):
    source = trained_job(door)  # its checkpoint is no torch file: the export fails
    published = post(door, f"/api/v1/jobs/{source}/publish", json={"name": "broken"}, timeout=300)  # a child imports torch
    error = refused(published, 400, "checkpoint")
    assert "Traceback" not in error["message"] and str(door.service.settings.home) not in error["message"]
    assert os.sep + "site-packages" not in error["message"]


def test_method_not_allowed_says_what_is(door):
    response = send(door, "DELETE", "/api/v1/jobs")
    refused(response, 405, None)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
