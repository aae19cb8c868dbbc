"""Deployments: ``POST/GET/DELETE /api/v1/deployments``, and ``/serve/<name>/...`` in front of their replicas.

A deployment serves published weights (``services.serving``). Its owner is who deployed it; it is
shared as the weights were (or as the request says). Whoever may read it may call it: through nginx
(``/_frontdoor/serve/<name>`` names a ready replica's port, or the service's own, which then answers
503), or through the service itself (``/serve/<name>/...``, forwarded to a replica) when there is no nginx.
"""
from __future__ import annotations

import http.client
import json
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from cauchy.manifest import NAME_RE, find_entry, read_manifest
from services.api.errors import ApiError, bad_request, conflict, not_found
from services.api.jobs import services
from services.auth.access import can_read, can_write
from services.auth.accounts import check_visibility
from services.auth.seam import check_csrf, current_user, login_required, open_to_anonymous
from services.serving.models import BACKENDS, DEVICES, Deployment
from services.serving.replicas import NameTaken
from services.weights_store import weights_dir

bp = Blueprint("deployments", __name__)
MAX_BATCH, MAX_WAIT_MS = 256, 1000.0
DEFAULTS = {"replicas": 1, "device": "cpu", "max_batch": 8, "max_wait_ms": 5.0, "backend": "torch"}
FORWARD_TIMEOUT_S = 300
SERVE_ROUTES = ("predict", "health", "ready", "metrics")  # what /serve/<name>/ passes to a replica


def _number(body: dict[str, Any], key: str, kind: type, low: float, high: float) -> Any:
    value = body.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise bad_request(f"expected {'an integer' if kind is int else 'a number'} from {low:g} to {high:g}", key)
    if not low <= value <= high:
        raise bad_request(f"expected {low:g} to {high:g}, got {value}", key)
    return kind(value)


def _choice(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key, DEFAULTS[key])
    if value not in choices:
        raise bad_request(f"expected one of {', '.join(choices)}, got {value!r}", key)
    return value


def readable_deployment(name: str) -> Deployment:
    """The deployment, if the caller may read it; otherwise as absent as one that does not exist (404)."""
    deployment = services().supervisor.serving.get(name)
    if deployment is None or not can_read(login_required(), deployment.owner, deployment.visibility):
        raise not_found(f"no deployment {name!r}")
    return deployment


def examples(name: str) -> dict[str, str]:
    """Copy-ready calls of the deployment through the front door, with a personal token."""
    url = f"{services().settings.public_url}/serve/{name}/predict"
    return {
        "curl": f'curl -H "Authorization: Bearer $CAUCHY_TOKEN" --data-binary @image.jpg {url}',
        "curl_several": f'curl -H "Authorization: Bearer $CAUCHY_TOKEN" -F a=@one.jpg -F b=@two.jpg "{url}?draw=1"',
        "python": ("import os, requests\n\n"
                   f'reply = requests.post("{url}", data=open("image.jpg", "rb").read(),\n'
                   '                      headers={"Authorization": "Bearer " + os.environ["CAUCHY_TOKEN"]})\n'
                   'print(reply.json()["predictions"][0])'),
    }


def shown(deployment: Deployment, with_metrics: bool = False) -> dict[str, Any]:
    return {**services().supervisor.serving.describe(deployment, with_metrics), "examples": examples(deployment.name)}


@bp.post("/api/v1/deployments")
def create() -> ResponseReturnValue:
    caller, svc = login_required(), services()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request('send a JSON object such as {"weights": "small_cnn_digits", "replicas": 1}', None,
                          "invalid_body")
    unknown = sorted(set(body) - {"name", "weights", "visibility", *DEFAULTS})
    if unknown:
        raise bad_request(f"unknown key; valid keys: name, weights, visibility, {', '.join(DEFAULTS)}", unknown[0])
    weights = body.get("weights")
    entry = find_entry(weights_dir(svc.settings.home), weights) if isinstance(weights, str) else None
    if entry is None or not can_read(caller, entry.get("owner") or "", entry.get("visibility")):
        raise bad_request(f"no published weights named {str(weights)[:100]!r} that you may read", "weights",
                          "unknown_weights")
    if not isinstance(entry.get("hypes"), dict):
        raise bad_request(f"weights {weights!r} were published before serving recorded their hypes: publish the "
                          "job again to deploy them", "weights", "not_servable")
    name = body.get("name", weights)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise bad_request("expected 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit", "name")
    fields = {"replicas": _number(body, "replicas", int, 0, svc.settings.serve_max_replicas),
              "device": _choice(body, "device", DEVICES), "backend": _choice(body, "backend", tuple(BACKENDS)),
              "max_batch": _number(body, "max_batch", int, 1, MAX_BATCH),
              "max_wait_ms": _number(body, "max_wait_ms", float, 0, MAX_WAIT_MS)}
    needs = BACKENDS[fields["backend"]]
    if needs and needs not in (entry.get("exports") or {}):
        raise bad_request(f"the {fields['backend']} backend runs the weights' {needs} export, and {weights!r} have none: "
                          f"export them first (POST /api/v1/weights/{weights}/export {{\"format\": \"{needs}\"}})",
                          "backend", "not_exported")
    if fields["device"] == "cuda" and not svc.settings.gpus:
        raise bad_request("this service has no GPU; deploy on the cpu", "device")
    visibility = check_visibility(svc.store, body.get("visibility", entry.get("visibility") or "private"), caller)
    try:
        deployment = svc.supervisor.serving.create(name=name, weights=weights, owner=caller.name,
                                                   visibility=visibility, **fields)
    except NameTaken:
        raise conflict(f"a deployment named {name!r} exists; delete it first or choose another name") from None
    svc.supervisor.wake()
    response = jsonify(shown(deployment))
    response.status_code = 201
    return response


@bp.get("/api/v1/deployments")
def index() -> ResponseReturnValue:
    caller, serving = login_required(), services().supervisor.serving
    visible = [d for d in serving.deployments() if can_read(caller, d.owner, d.visibility)]
    return jsonify({"deployments": [shown(d) for d in reversed(visible)]})


@bp.get("/api/v1/deployments/<name>")
def show(name: str) -> ResponseReturnValue:
    """The deployment with its replicas' health and metrics (requests, batch sizes, latency percentiles)."""
    return jsonify(shown(readable_deployment(name), with_metrics=True))


@bp.delete("/api/v1/deployments/<name>")
def delete(name: str) -> ResponseReturnValue:
    deployment = readable_deployment(name)
    if not can_write(login_required(), deployment.owner):
        raise ApiError(403, "forbidden", f"deployment {name!r} is {deployment.owner}'s: only its owner or an admin "
                                         "may delete it")
    services().supervisor.serving.delete(deployment)
    return Response(status=204)


def served_prediction(job_id: int, image: bytes) -> tuple[str, dict[str, Any]] | None:
    """The answer of a ready deployment (one the caller may read) of weights published from job ``job_id``
    for one image, with the deployment's name; None when no such deployment runs (the legacy
    ``test_single`` then runs a predict job). A bad image is a 400 naming ``image``."""
    svc, caller = services(), current_user()
    published = {e["name"] for e in read_manifest(weights_dir(svc.settings.home)) if e.get("source_job") == job_id}
    for deployment in svc.supervisor.serving.deployments():
        if deployment.weights not in published or not can_read(caller, deployment.owner, deployment.visibility):
            continue
        port = svc.supervisor.serving.pick(deployment.name)
        if port is None:
            continue
        status, data, _ = forward(port, "predict", image, "application/octet-stream", "")
        answer = json.loads(data)
        if status == 400:
            raise bad_request(answer["error"]["message"], "image")
        if status == 200:
            return deployment.name, answer["predictions"][0]
    return None


def forward(port: int, route: str, body: bytes, content_type: str | None, query: str) -> tuple[int, bytes, str]:
    """One request to a replica on this machine: its status, body and content type."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=FORWARD_TIMEOUT_S)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        if accept := request.headers.get("Accept"):
            headers["Accept"] = accept
        connection.request("POST" if route == "predict" else "GET", f"/{route}{'?' + query if query else ''}",
                           body=body if route == "predict" else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or "application/json"
    finally:
        connection.close()


def not_ready(name: str) -> ApiError:
    return ApiError(503, "not_ready", f"deployment {name!r} has no ready replica yet (GET /api/v1/deployments/{name} "
                                      "says why)")


@bp.route("/serve/<name>/<route>", methods=["GET", "POST"])
def serve(name: str, route: str) -> ResponseReturnValue:
    """A replica's route through the service (no nginx), or the answer when nginx found no ready replica."""
    deployment = readable_deployment(name)
    if route not in SERVE_ROUTES or (route == "predict") != (request.method == "POST"):
        raise not_found(f"no route {request.method} /serve/{name}/{route}; POST predict, GET health, ready, metrics")
    port = services().supervisor.serving.pick(deployment.name)
    if port is None:
        raise not_ready(name)
    status, data, content_type = forward(port, route, request.get_data(), request.content_type, request.query_string.decode())
    return Response(data, status=status, content_type=content_type)


@bp.get("/_frontdoor/serve/<name>")
@open_to_anonymous
def may_serve(name: str) -> ResponseReturnValue:
    """nginx's ``auth_request`` before ``/serve/<name>/``: 204 and the port to proxy to (a ready replica's,
    else the service's own, which answers 503), 401 unauthenticated, else 403 (nginx passes only these)."""
    caller = current_user()
    if caller is None:
        return Response(status=401)
    deployment = services().supervisor.serving.get(name)
    if deployment is None or not can_read(caller, deployment.owner, deployment.visibility) or not csrf_passes():
        return Response(status=403)
    port = services().supervisor.serving.pick(name) or request.environ.get("SERVER_PORT")  # this service's own
    return Response(status=204, headers={"X-Serve-Port": str(port)})


def csrf_passes() -> bool:
    """A browser's POST (signed in by cookie) carries the CSRF header, as for the API; nginx passes the method."""
    try:
        check_csrf(request.headers.get("X-Original-Method", "GET"))
    except ApiError:
        return False
    return True

