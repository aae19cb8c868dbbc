"""Who gets what, through nginx: every route of the OpenAPI document and every legacy endpoint, asked by
an anonymous caller, another member, a member of the group the job is shared with, its owner and an
admin, each answered with the status in TABLE. A route missing from TABLE fails the test, so a new
route cannot ship without a rule. Also: the Host check, a job's Visdom and a weights file."""
from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
import requests
from stack import make_hypes

from cauchy.manifest import read_manifest
from services import cli_datasets
from services.api.openapi import DOCUMENT
from services.cli import Client
from services.weights_store import write_manifest

CALLERS = ("anonymous", "other", "group", "owner", "admin")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


class World:
    """The stack, its users (owner ``olive`` and ``gus`` in group ``team``, ``otto`` outside it) and the
    things they are asked about: olive's ended job shared with ``team`` and her weights shared likewise."""

    def __init__(self, stack, tmp_path) -> None:
        self.stack, self.service, self.tmp_path = stack, stack.service, tmp_path
        self.images = stack.service.settings.datasets_dir / "images"  # test_batch reads data roots only
        self.images.mkdir(parents=True, exist_ok=True)
        self.clients = {"other": self.service.as_user("otto"), "group": self.service.as_user("gus", groups=("team",)),
                        "owner": self.service.as_user("olive", groups=("team",))}
        self.tokens = {"anonymous": None, **{who: c.token for who, c in self.clients.items()}, "admin": self.service.token}
        self.service.accounts.create_group("side")
        self.job = self.clients["owner"].submit(make_hypes("ok", 1), visibility="group:team")["id"]
        assert self.service.wait_ended(self.job)["state"] == "succeeded"
        weights = self.service.settings.home / "weights"
        (weights / "w_team.pth").write_bytes(b"weights")
        write_manifest(weights, [{"name": "w_team", "file": "w_team.pth", "owner": "olive", "visibility": "group:team",
                                  "hypes": make_hypes("ok", 1)}])
        owner = self.clients["owner"]
        # Her deployment of them, shared as they are; no replica (nothing to load), and there already for a second World.
        deployed = owner.call("POST", "/api/v1/deployments", json={"weights": "w_team", "name": "d_team", "replicas": 0})
        assert deployed.status_code in (201, 409), deployed.text
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("train/cat/1.png", b"cat")
        api = Client(stack.url, owner.token)
        version = cli_datasets.wait_ended(api, cli_datasets.upload(
            api, write(tmp_path / "team.zip", archive.getvalue()), "team_data", {"visibility": "group:team"},
            progress=False), poll_s=0.1)
        assert version["state"] == "ready", version
        self.dataset = version["dataset_id"]
        self.upload = owner.call("POST", "/api/v1/datasets/uploads", json={"name": "team_data", "size": 100}).json()["id"]

    def fresh_owner_token(self) -> str:
        olive = self.service.accounts.user("olive")
        return str(self.service.accounts.create_token(olive.id, "to revoke").row.id)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if self.tokens[who] else {}

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.stack.url + path, headers=self.headers(who), timeout=120,
                                allow_redirects=False, **kwargs)


def write(path: Any, data: bytes) -> Any:
    path.write_bytes(data)
    return path


A, M, G, O, D = CALLERS  # noqa: E741 (columns of TABLE, in this order)
OK_READ = (401, 404, 200, 200, 200)  # read a job shared with the group
OWNER_ONLY = (401, 404, 403, 200, 200)
ANY_USER = (401, 200, 200, 200, 200)
ADMIN_ONLY = (401, 403, 403, 403, 200)
PATHS: dict[str, Callable[[World], str]] = {"job_id": lambda w: str(w.job), "path": lambda w: "hypes.json",
                                            "token_id": lambda w: w.fresh_owner_token(), "user": lambda w: "gus",
                                            "dataset_id": lambda w: str(w.dataset), "number": lambda w: "1",
                                            "upload_id": lambda w: w.upload}
NAMES = {"/weights/{name}": "w_team", "/weights/{name}/export": "w_team", "/users/{name}": "otto",  # else: group "side"
         "/deployments/{name}": "d_team",
         "/datasets/{dataset_id}/versions/{number}/previews/{name}": "first.jpg"}

# (method, path, JSON body or None, statuses of anonymous, other, group, owner, admin), asked in this order.
TABLE: list[tuple[str, str, Any, tuple[int, ...]]] = [
    ("GET", "/api/v1/health", None, (200, 200, 200, 200, 200)),
    ("GET", "/api/v1/openapi.json", None, (200, 200, 200, 200, 200)),
    ("GET", "/api/v1/templates", None, ANY_USER),
    ("POST", "/api/v1/auth/login", {"name": "nobody", "password": "wrong-password"}, (401, 401, 401, 401, 401)),
    ("POST", "/api/v1/auth/logout", None, (204, 204, 204, 204, 204)),
    ("GET", "/api/v1/auth/me", None, ANY_USER),
    ("GET", "/api/v1/tokens", None, ANY_USER),
    ("POST", "/api/v1/tokens", {"name": "matrix"}, (401, 201, 201, 201, 201)),
    ("DELETE", "/api/v1/tokens/{token_id}", None, (401, 404, 404, 204, 404)),  # one's own tokens only
    ("GET", "/api/v1/users", None, ADMIN_ONLY),
    ("POST", "/api/v1/users", {"name": "newcomer", "password": "newcomer-password"}, (401, 403, 403, 403, 201)),
    ("PATCH", "/api/v1/users/{name}", {"display_name": "Otto"}, ADMIN_ONLY),
    ("GET", "/api/v1/groups", None, ADMIN_ONLY),
    ("POST", "/api/v1/groups", {"name": "newgroup"}, (401, 403, 403, 403, 201)),
    ("POST", "/api/v1/groups/{name}/members", {"user": "gus"}, ADMIN_ONLY),
    ("DELETE", "/api/v1/groups/{name}/members/{user}", None, ADMIN_ONLY),
    ("GET", "/api/v1/jobs", None, ANY_USER),
    ("GET", "/api/v1/scheduler", None, ANY_USER),  # policy, capacity and usage: what fair share weighs
    ("POST", "/api/v1/jobs", {"hypes": make_hypes("ok", 1)}, (401, 201, 201, 201, 201)),
    ("GET", "/api/v1/jobs/{job_id}", None, OK_READ),
    ("PATCH", "/api/v1/jobs/{job_id}", {"visibility": "group:team"}, OWNER_ONLY),
    ("GET", "/api/v1/jobs/{job_id}/logs", None, OK_READ),
    ("GET", "/api/v1/jobs/{job_id}/metrics", None, OK_READ),
    ("GET", "/api/v1/jobs/{job_id}/artifacts", None, OK_READ),
    ("GET", "/api/v1/jobs/{job_id}/artifacts/{path}", None, OK_READ),
    ("POST", "/api/v1/jobs/{job_id}/visdom", None, OK_READ),
    ("GET", "/api/v1/jobs/{job_id}/charts", None, (401, 404, 302, 302, 302)),
    ("DELETE", "/api/v1/jobs/{job_id}/visdom", None, (401, 404, 403, 200, 409)),  # the owner shut it already
    ("POST", "/api/v1/jobs/{job_id}/stop", None, (401, 404, 403, 409, 409)),  # it has ended: allowed, but too late
    # Past the access checks, the job (succeeded) has nothing left to resume: 409 (a resume: test_resume.py).
    ("POST", "/api/v1/jobs/{job_id}/resume", None, (401, 404, 403, 409, 409)),
    ("POST", "/api/v1/jobs/{job_id}/publish", {}, (401, 404, 403, 400, 400)),  # allowed; the name is missing
    ("GET", "/api/v1/weights", None, ANY_USER),
    ("PATCH", "/api/v1/weights/{name}", {"visibility": "group:team"}, OWNER_ONLY),
    # Allowed for the owner and an admin; no job here trained w_team and it records no class names: nothing rebuilds it, 409.
    ("POST", "/api/v1/weights/{name}/export", {"format": "onnx"}, (401, 404, 403, 409, 409)),
    # Deployments of readable weights (the other member may not read w_team); d_team is olive's, shared with team.
    ("POST", "/api/v1/deployments", {"weights": "w_team", "name": "d_matrix", "replicas": 0}, (401, 400, 201, 409, 409)),
    ("GET", "/api/v1/deployments", None, ANY_USER),
    ("GET", "/api/v1/deployments/{name}", None, OK_READ),
    ("DELETE", "/api/v1/deployments/{name}", None, (401, 404, 403, 204, 404)),  # gone for the admin
    ("GET", "/api/v1/datasets", None, ANY_USER),
    # A new dataset for the first caller; the others may not add versions to it, but an admin may.
    ("POST", "/api/v1/datasets/uploads", {"name": "matrix_data", "size": 10}, (401, 201, 409, 409, 201)),
    ("GET", "/api/v1/datasets/uploads/{upload_id}", None, (401, 404, 404, 200, 200)),  # the uploader's only
    ("PUT", "/api/v1/datasets/uploads/{upload_id}", None, (401, 404, 404, 400, 400)),  # allowed; no Content-Range
    ("POST", "/api/v1/datasets/uploads/{upload_id}/finish", None, (401, 404, 404, 409, 409)),  # allowed; bytes missing
    ("DELETE", "/api/v1/datasets/uploads/{upload_id}", None, (401, 404, 404, 204, 404)),  # abandoned by the owner
    ("POST", "/api/v1/datasets/register", {"name": "etc", "path": "/etc"}, (401, 403, 403, 403, 400)),  # not a data root
    ("GET", "/api/v1/datasets/{dataset_id}", None, OK_READ),
    ("PATCH", "/api/v1/datasets/{dataset_id}", {"visibility": "group:team"}, OWNER_ONLY),
    ("GET", "/api/v1/datasets/{dataset_id}/stats", None, OK_READ),
    ("GET", "/api/v1/datasets/{dataset_id}/versions", None, OK_READ),
    ("GET", "/api/v1/datasets/{dataset_id}/versions/{number}", None, OK_READ),
    ("GET", "/api/v1/datasets/{dataset_id}/versions/{number}/report", None, OK_READ),
    ("GET", "/api/v1/datasets/{dataset_id}/versions/{number}/stats", None, OK_READ),
    ("GET", "/api/v1/datasets/{dataset_id}/versions/{number}/progress", None, OK_READ),
    ("GET", "/api/v1/datasets/{dataset_id}/versions/{number}/previews", None, OK_READ),
    ("GET", "/api/v1/datasets/{dataset_id}/versions/{number}/previews/{name}", None, OK_READ),
    ("DELETE", "/api/v1/datasets/{dataset_id}/versions/{number}", None, (401, 404, 403, 204, 404)),  # gone for the admin
    ("DELETE", "/api/v1/datasets/{dataset_id}", None, (401, 404, 403, 204, 404)),
    # A job's node, with its run's token only (none here, and the job has ended): no user may.
    ("GET", "/api/v1/jobs/{job_id}/node/files/{path}", None, (403, 403, 403, 403, 403)),
    ("PUT", "/api/v1/jobs/{job_id}/node/files/{path}", None, (403, 403, 403, 403, 403)),
    ("GET", "/api/v1/nodes", None, ADMIN_ONLY),
    ("POST", "/api/v1/nodes/{name}/drain", {"drain": True}, (401, 403, 403, 403, 409)),  # the local executor has none
]

# Legacy endpoints answer HTTP 200 with a code; the code is what each caller gets.
LEGACY: dict[str, tuple[Callable[[World], dict[str, Any]], tuple[str, ...]]] = {
    "free_port": (lambda w: {}, ("100401", "100200", "100200", "100200", "100200")),
    "train": (lambda w: {"hypes": json.dumps(make_hypes("ok", 1))}, ("100401", "100200", "100200", "100200", "100200")),
    "check_viz_started": (lambda w: {"pid": w.job}, ("100401", "100404", "100200", "100200", "100200")),
    "stop_visdom": (lambda w: {"pid": w.job}, ("100401", "100404", "100403", "100409", "100409")),
    "stop_training": (lambda w: {"pid": w.job}, ("100401", "100404", "100403", "100409", "100409")),
    "test_single": (lambda w: {"pid": w.job, "image": PNG, "timeout": 60},
                    ("100401", "100404", "100200", "100200", "100200")),
    "test_batch": (lambda w: {"pid": w.job, "dir": str(w.images)}, ("100401", "100404", "100200", "100200", "100200")),
}


def documented_routes() -> set[tuple[str, str]]:
    return {(method.upper(), "/api/v1" + path) for path, item in DOCUMENT["paths"].items() for method in item}


def test_every_route_has_a_rule(stack):
    assert {(method, path) for method, path, _, _ in TABLE} == documented_routes()
    legacy = {rule.rule.removeprefix("/cauchy/") for rule in stack.service.app.url_map.iter_rules()
              if rule.rule.startswith("/cauchy/")}
    assert set(LEGACY) == legacy


def fill(world: World, path: str) -> str:
    name = NAMES.get(path.removeprefix("/api/v1"), "side")
    for key, value in PATHS.items():
        if "{" + key + "}" in path:
            path = path.replace("{" + key + "}", value(world))
    return path.replace("{name}", name)


@pytest.mark.slow
def test_each_caller_gets_the_status_of_the_table(stack, tmp_path):
    world = World(stack, tmp_path)
    wrong = []
    for method, path, body, expected in TABLE:
        for who, status in zip(CALLERS, expected):
            response = world.call(who, method, fill(world, path), **({"json": body} if body is not None else {}))
            if response.status_code != status:
                wrong.append(f"{who} {method} {path}: {response.status_code} (expected {status}) {response.text[:200]}")
    for endpoint, (params, expected) in LEGACY.items():
        for who, code in zip(CALLERS, expected):
            reply = world.call(who, "POST", f"/cauchy/{endpoint}", data=params(world)).json()
            if reply["code"] != code:
                wrong.append(f"{who} legacy {endpoint}: {reply['code']} (expected {code}) {str(reply['content'])[:200]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_visdom_weights_files_and_the_list_through_the_front_door(stack, tmp_path):
    world = World(stack, tmp_path)
    weights = stack.service.settings.home / "weights"
    (weights / "w_team.onnx").write_bytes(b"onnx")
    (weights / "w_team.edge.zip").write_bytes(b"zip")
    write_manifest(weights, [{**entry, "exports": {"onnx": {"file": "w_team.onnx"}}} for entry in read_manifest(weights)])
    assert world.call("admin", "POST", f"/api/v1/jobs/{world.job}/visdom").status_code == 200
    for who, status in zip(CALLERS, (403, 403, 200, 200, 200)):
        assert world.call(who, "GET", f"/visdom/{world.job}/").status_code == status, who
        assert world.call(who, "GET", "/weights/w_team.onnx").status_code == status, who  # an export, like the weights
        assert world.call(who, "GET", "/weights/w_team.edge.zip").status_code == 403, who  # no entry records it
        assert world.call(who, "GET", "/weights/w_team.pth").status_code == status, who
    # A deployment's routes: nginx asks the service; with no ready replica the service itself answers 503.
    for who, status in zip(CALLERS, (401, 403, 503, 503, 503)):
        assert world.call(who, "GET", "/serve/d_team/health").status_code == status, who
        assert world.call(who, "POST", "/serve/d_team/predict", data=b"x").status_code == status, who
    seen = {who: [e["name"] for e in world.call(who, "GET", "/weights/").json()["weights"]] for who in CALLERS}
    assert seen == {"anonymous": [], "other": [], "group": ["w_team"], "owner": ["w_team"], "admin": ["w_team"]}
    listed = {who: world.call(who, "GET", "/api/v1/jobs").json().get("total") for who in CALLERS[1:]}
    assert listed == {"other": 0, "group": 1, "owner": 1, "admin": 1}
    # Signed in by cookie rather than token: the same answers for reading; legacy endpoints and
    # state changes without the CSRF header are refused.
    for name, status in (("otto", 403), ("gus", 200)):
        browser = requests.Session()
        signed_in = browser.post(stack.url + "/api/v1/auth/login", json={"name": name, "password": "test-user-password"},
                                 timeout=30)
        assert signed_in.status_code == 200, signed_in.text
        assert browser.get(f"{stack.url}/visdom/{world.job}/", timeout=30).status_code == status, name
        assert browser.get(f"{stack.url}/cauchy/check_viz_started", params={"pid": world.job}, timeout=30).json()["code"] == "100401"
        serve = browser.post(f"{stack.url}/serve/d_team/predict", data=b"x", timeout=30)
        assert serve.status_code == 403, name  # otto may not read it; gus sends no CSRF header
        refused = browser.post(stack.url + "/api/v1/jobs", json={"hypes": make_hypes("ok", 1)}, timeout=30)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"


def test_the_front_door_refuses_other_hosts(stack):
    port = stack.door.listen_port
    for host, status in [("evil.example", 400), (f"rebound.evil:{port}", 400), (f"localhost:{port}", 200),
                         (f"127.0.0.1:{port}", 200)]:
        response = requests.get(stack.url + "/api/v1/health", headers={"Host": host}, timeout=10)
        assert response.status_code == status, host
        if status == 400:
            assert response.json()["error"]["code"] == "bad_host"
