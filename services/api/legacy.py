"""The legacy helper's endpoints under ``/cauchy/``, on top of the job machinery, so old clients keep working.

Every reply is ``{"code": "100200", "content": ...}`` with HTTP 200, as before; other ``1000xx``
codes are errors (``100400`` bad request, ``100404`` unknown job, ``100409`` conflict, ``100413``
body too large, ``100408`` inference not finished in time, ``100503`` Visdom could not start).
Parameters may come as a query string, a form or a JSON object. What changed, on purpose:
- ``pid`` in a request is a job id (what ``train`` returned as ``pid``); no OS process is ever
  signalled on a client's word.
- ``free_port`` only reports a port that is free now: Visdom starts with its job, and ``train``'s
  reply and ``check_viz_started`` give the job's real port and URL.
- ``test_single``/``test_batch`` run ``run_tasks.py --phase predict`` as a job on the checkpoint of
  the training job ``job_id``; ``test_single`` waits for the predictions, ``test_batch`` returns
  the job id (predictions land in ``predictions/predictions.json`` among the job's artifacts).
"""
from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from cauchy import rundir
from services.api.errors import ApiError, bad_request, conflict
from services.api.jobs import find_job, request_stop, services
from services.api.submission import job_fields, source_checkpoint
from services.jobs.ports import PortsExhausted
from services.jobs.store import ENDED, SUCCEEDED, Job
from services.jobs.supervisor import visdom_base_url

bp = Blueprint("legacy", __name__, url_prefix="/cauchy")
OK = "100200"
METHODS = ["GET", "POST"]
IMAGE_SIGNATURES = {b"\x89PNG": ".png", b"\xff\xd8": ".jpg", b"BM": ".bmp", b"RIFF": ".webp"}


def reply(content: Any, code: str = OK) -> ResponseReturnValue:
    return jsonify({"code": code, "content": content})


@bp.errorhandler(ApiError)
def api_error(exc: ApiError) -> ResponseReturnValue:
    named = not exc.field or exc.message.startswith(exc.field.removeprefix("hypes."))  # hypes errors name their key
    content = exc.message if named else f"{exc.field}: {exc.message}"
    return reply(content, f"100{exc.status}")


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    return reply(exc.description or exc.name, f"100{exc.code}")


def params() -> dict[str, Any]:
    merged: dict[str, Any] = {**request.args.to_dict(), **request.form.to_dict()}
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        merged.update(body)
    return merged


def as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"expected an integer, got {json.dumps(value)}", name) from None


def legacy_job(p: dict[str, Any]) -> Job:
    key = "job_id" if p.get("job_id") is not None else "pid"
    if p.get(key) is None:
        raise bad_request("give job_id (or pid, the value train returned)", "job_id")
    return find_job(as_int(p[key], key))


def submit_body(p: dict[str, Any]) -> dict[str, Any]:
    """A ``POST /jobs`` body from legacy parameters (forms send everything as strings)."""
    hypes = p.get("hypes")
    if isinstance(hypes, str) and hypes.lstrip().startswith("{"):  # a document; else a name under hypes/
        hypes = as_json(hypes, "hypes")
    body: dict[str, Any] = {"hypes": hypes}
    for key in ("phase", "name", "user"):
        if p.get(key) is not None:
            body[key] = p[key]
    for key in ("gpus", "priority"):
        if p.get(key) is not None:
            body[key] = as_int(p[key], key)
    if p.get("overrides") is not None:
        overrides = p["overrides"]
        body["overrides"] = as_json(overrides, "overrides") if isinstance(overrides, str) else overrides
    return body


def as_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_request(f"{name} is not valid JSON: {exc}", name) from None


def job_content(job: Job) -> dict[str, Any]:
    viewer = services().supervisor.viewers.get(job.id)
    return {"job_id": job.id, "pid": job.id, "state": job.state, "port": viewer.port if viewer else None,
            "visdom_url": visdom_base_url(job.id) + "/"}


@bp.route("/free_port", methods=METHODS)
def free_port() -> ResponseReturnValue:
    try:
        return reply({"port": services().supervisor.ports.first_free()})
    except PortsExhausted as exc:
        raise ApiError(503, "no_port", str(exc)) from None


@bp.route("/train", methods=METHODS)
def train() -> ResponseReturnValue:
    p = params()
    fields = job_fields(submit_body(p), services().settings, services().store, request.headers.get("X-Cauchy-User"))
    job = services().store.add(**fields)
    services().supervisor.wake()
    return reply(job_content(job))


@bp.route("/stop_training", methods=METHODS)
def stop_training() -> ResponseReturnValue:
    return reply(job_content(request_stop(legacy_job(params()).id)))


@bp.route("/stop_visdom", methods=METHODS)
def stop_visdom() -> ResponseReturnValue:
    job = legacy_job(params())
    if not services().supervisor.stop_viewer(job.id):
        raise conflict(f"job {job.id} has no viewer to shut down (none up, or the job is still running)")
    return reply(job_content(job))


@bp.route("/check_viz_started", methods=METHODS)
def check_viz_started() -> ResponseReturnValue:
    job = legacy_job(params())
    status = services().supervisor.viewer_status(job.id)
    return reply({"started": bool(status["up"]), "port": status["port"], "url": visdom_base_url(job.id) + "/",
                  "job_id": job.id})


def predict_job(p: dict[str, Any], inputs: str) -> Job:
    """A predict job on the checkpoint of the training job named in ``p``."""
    source = legacy_job(p)
    source_id, checkpoint = source_checkpoint(services().settings, services().store, source.id)
    return services().store.add(
        name=f"predict with job {source_id}", user=request.headers.get("X-Cauchy-User") or source.user,
        phase="predict", priority=as_int(p.get("priority", 0), "priority"), gpus_requested=0,
        hypes=source.hypes, hypes_name=source.hypes_name, overrides=[], from_job=source_id,
        resume_from=checkpoint, inputs=inputs)


def wait_for(job_id: int, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    services().supervisor.wake()
    while True:
        job = services().store.get(job_id)
        if job.state in ENDED or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def predictions(job: Job) -> list[dict[str, Any]]:
    path = services().supervisor.job_dir(job.id) / rundir.PREDICTIONS
    return json.loads(path.read_text(encoding="utf-8"))["predictions"]


def finished_reply(job: Job, single: bool) -> ResponseReturnValue:
    if job.state not in ENDED:
        return reply({"job_id": job.id, "state": job.state, "message": "still running; poll the job"}, "100408")
    if job.state != SUCCEEDED:
        return reply({"job_id": job.id, "state": job.state, "message": job.reason}, "100500")
    found = predictions(job)
    return reply({"job_id": job.id, "prediction" if single else "predictions": found[0] if single else found})


@bp.route("/test_single", methods=METHODS)
def test_single() -> ResponseReturnValue:
    p = params()
    raw = str(p.get("image") or "")
    try:
        image = base64.b64decode(raw.partition(",")[2] if raw.startswith("data:") else raw, validate=True)
    except (binascii.Error, ValueError):
        image = b""
    if not image:
        raise bad_request("image must be a base64-encoded image", "image")
    suffix = next((ext for sig, ext in IMAGE_SIGNATURES.items() if image.startswith(sig)), ".png")
    inputs = services().settings.home / "inputs" / uuid.uuid4().hex
    inputs.mkdir(parents=True)
    path = inputs / f"image{suffix}"
    path.write_bytes(image)
    job = predict_job(p, str(path))
    return finished_reply(wait_for(job.id, as_int(p.get("timeout", 120), "timeout")), single=True)


@bp.route("/test_batch", methods=METHODS)
def test_batch() -> ResponseReturnValue:
    p = params()
    directory = p.get("dir") or p.get("directory")
    if not isinstance(directory, str) or not Path(directory).is_dir():
        raise bad_request(f"no directory {json.dumps(directory)} on the server", "dir")
    job = predict_job(p, directory)
    wait = as_int(p.get("wait", 0), "wait")
    return finished_reply(wait_for(job.id, wait), single=False) if wait else reply(job_content(job))
