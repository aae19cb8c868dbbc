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
  the training job ``job_id``, except that ``test_single`` answers at once from a ready deployment of
  weights published from that job when one runs (``content``: ``deployment`` and ``prediction``, as
  ``/serve/<name>/predict`` answers; docs/serving.md); ``test_single`` waits for the predictions, ``test_batch`` returns
  the job id (predictions land in ``predictions/predictions.json`` among the job's artifacts).
- Waits (``timeout``, ``wait``: 0 to 86400) last at most ``CAUCHY_LEGACY_WAIT_MAX_S`` (60 s), only
  ``CAUCHY_LEGACY_WAITERS`` requests wait at once (the others get ``100408`` and the job id at once),
  a waiting request sleeps on the job's end event and gives up when its client goes away (a
  ``test_single`` job is then stopped). ``test_batch`` reads ``dir`` (in a data root or
  the datasets store) or ``dataset=name[@version]`` (a ready version the caller may read);
  ``test_single``'s image is written only once the request is accepted and deleted when its job ends.
"""
from __future__ import annotations

import base64
import binascii
import json
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from cauchy import rundir
from services.api.deployments import served_prediction
from services.api.errors import ApiError, bad_request, conflict
from services.api.jobs import find_job, find_owned_job, services, stop_job
from services.api.limits import user_limits
from services.api.submission import PRIORITY_RANGE, add_job, allowed_priority, job_fields, source_checkpoint
from services.auth.access import JOB_DEFAULT
from services.auth.seam import login_required
from services.containment import resolve_data_path
from services.datasets.store import DatasetError, DatasetStore, Found
from services.jobs.ports import PortsExhausted
from services.jobs.store import ENDED, SUCCEEDED, Job
from services.jobs.viewers import visdom_base_url

bp = Blueprint("legacy", __name__, url_prefix="/cauchy")
OK = "100200"
METHODS = ["GET", "POST"]
IMAGE_SIGNATURES = {b"\x89PNG": ".png", b"\xff\xd8": ".jpg", b"BM": ".bmp", b"RIFF": ".webp"}
INPUTS_DIR = "inputs"  # under $CAUCHY_HOME: test_single's images, each in its own folder
MAX_WAIT_PARAM = 86400


@bp.record_once
def _delete_inputs_when_done(state: BlueprintSetupState) -> None:
    """A test_single job's image is deleted when the job ends, whoever is still waiting for it."""
    svc = state.app.extensions["cauchy"]
    root = svc.settings.home / INPUTS_DIR

    def delete(job_id: int) -> None:
        job = svc.store.get(job_id)
        if job is not None and job.inputs and Path(job.inputs).parent.parent == root:
            shutil.rmtree(Path(job.inputs).parent, ignore_errors=True)

    svc.supervisor.endings.listen(delete)


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


def as_int(value: Any, name: str, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise bad_request(f"expected an integer, got {json.dumps(value)[:80]}", name) from None
    if not low <= number <= high:
        raise bad_request(f"expected an integer from {low} to {high}, got {str(number)[:40]}", name)
    return number


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
        return reply({"port": services().supervisor.viewers.ports.first_free()})
    except PortsExhausted as exc:
        raise ApiError(503, "no_port", str(exc)) from None


@bp.route("/train", methods=METHODS)
def train() -> ResponseReturnValue:
    p = params()
    svc = services()
    fields = job_fields(submit_body(p), svc.settings, svc.store, login_required(), svc.checker,
                        svc.supervisor.executor.machines())
    user_limits().admit_submission(fields["user"])
    job = add_job(fields, services().settings, services().store)
    services().supervisor.wake()
    return reply(job_content(job))


@bp.route("/stop_training", methods=METHODS)
def stop_training() -> ResponseReturnValue:
    return reply(job_content(stop_job(legacy_job(params()).id)))  # stop_job checks ownership


@bp.route("/stop_visdom", methods=METHODS)
def stop_visdom() -> ResponseReturnValue:
    job = find_owned_job(legacy_job(params()).id)
    if not services().supervisor.viewers.shut(job.id):
        raise conflict(f"job {job.id} has no viewer to shut down (none up, or the job is still running)")
    return reply(job_content(job))


@bp.route("/check_viz_started", methods=METHODS)
def check_viz_started() -> ResponseReturnValue:
    job = legacy_job(params())
    status = services().supervisor.viewers.status(job.id)
    return reply({"started": bool(status["up"]), "port": status["port"], "url": visdom_base_url(job.id) + "/",
                  "job_id": job.id})


def predict_fields(p: dict[str, Any]) -> dict[str, Any]:
    """The columns of the caller's predict job on the checkpoint of the training job named in ``p`` (which
    it may read), all checked; the caller admits the submission and writes its inputs after this."""
    source, caller = legacy_job(p), login_required()
    source_id, checkpoint = source_checkpoint(services().settings, services().store, source.id, caller)
    priority = allowed_priority(as_int(p.get("priority", 0), "priority", *PRIORITY_RANGE), caller)
    fields = {"name": f"predict with job {source_id}", "user": caller.name, "visibility": JOB_DEFAULT,
              "phase": "predict", "priority": priority, "gpus_requested": 0, "hypes": source.hypes,
              "hypes_name": source.hypes_name, "overrides": [], "from_job": source_id, "resume_from": checkpoint}
    return fields


def wait_seconds(p: dict[str, Any], name: str, default: int) -> float:
    """The wait a request asks for, capped by the service's limit."""
    return min(as_int(p.get(name, default), name, 0, MAX_WAIT_PARAM), services().settings.legacy_wait_max_s)


def client_gone() -> bool:
    """True once the client closed its connection (waitress tells; under another server: never)."""
    check: Callable[[], bool] | None = request.environ.get("waitress.client_disconnected")
    return bool(check and check())


def wait_for(job_id: int, timeout: float) -> Job:
    """The job once it ended, or as it is when the deadline passes, the client goes away, or too many
    requests already wait (then at once). Sleeps on the job's end event, looking at the client each second."""
    svc = services()
    svc.supervisor.wake()
    gate = user_limits().waiters
    if timeout <= 0 or not gate.acquire(blocking=False):
        return svc.store.get(job_id)
    deadline = time.monotonic() + timeout
    try:
        with svc.supervisor.endings.watch(job_id) as ended:
            while True:
                job = svc.store.get(job_id)
                left = deadline - time.monotonic()
                if job.state in ENDED or left <= 0 or client_gone():
                    return job
                ended.wait(min(1.0, left))
    finally:
        gate.release()
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
    timeout = wait_seconds(p, "timeout", MAX_WAIT_PARAM)
    served = served_prediction(legacy_job(p).id, image)
    if served is not None:  # a deployment of the job's weights answers at once, no predict job
        return reply({"deployment": served[0], "prediction": served[1]})
    fields = predict_fields(p)
    user_limits().admit_submission(fields["user"])
    suffix = next((ext for sig, ext in IMAGE_SIGNATURES.items() if image.startswith(sig)), ".png")
    inputs = services().settings.home / INPUTS_DIR / uuid.uuid4().hex
    inputs.mkdir(parents=True)
    path = inputs / f"image{suffix}"
    path.write_bytes(image)
    job = services().store.add(**fields, inputs=str(path))
    job = wait_for(job.id, timeout)
    if job.state not in ENDED and client_gone():
        stop_job(job.id)  # nobody will read its prediction
    return finished_reply(job, single=True)


def stored_dataset(ref: Any) -> Found:
    """``dataset=name[@version]``: a ready version the caller may read, instead of a folder."""
    if not isinstance(ref, str) or not ref:
        raise bad_request('expected "name" or "name@version" of a stored dataset', "dataset")
    try:
        return DatasetStore(services().settings, services().store).resolve(ref, login_required())
    except DatasetError as exc:
        raise bad_request(str(exc), "dataset") from None


@bp.route("/test_batch", methods=METHODS)
def test_batch() -> ResponseReturnValue:
    p = params()
    fields = predict_fields(p)  # first: a job the caller may not read is a 100404 whatever the rest
    if p.get("dataset") is not None:
        found = stored_dataset(p["dataset"])
        path = Path(found.version.root)
        fields.update(dataset_version_id=found.version.id, dataset=found.ref, dataset_sha256=found.version.sha256)
    else:
        directory = p.get("dir") or p.get("directory")
        if not isinstance(directory, str):
            raise bad_request(f"no directory {json.dumps(directory)[:80]} on the server", "dir")
        path = resolve_data_path(services().settings, directory, "dir")
        if not path.is_dir():
            raise bad_request(f"no directory {json.dumps(directory)[:80]} on the server", "dir")
    wait = wait_seconds(p, "wait", 0)
    user_limits().admit_submission(fields["user"])
    job = services().store.add(**fields, inputs=str(path))
    return finished_reply(wait_for(job.id, wait), single=False) if wait else reply(job_content(job))
