"""Weights host API: ``GET /api/v1/weights`` (the entries the caller may read), ``POST
/api/v1/jobs/<id>/publish``, ``POST /api/v1/weights/<name>/export`` (ONNX, TorchScript or the edge
bundle, ``services/exports.py``), and ``/weights/<file>`` (range requests) for when the service stands in
for nginx. nginx asks ``/_frontdoor/weights/<file>`` before it serves a file itself."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from flask.typing import ResponseReturnValue

from cauchy import rundir
from cauchy.manifest import entry_files, find_entry, read_manifest
from services.api.datasets import json_object
from services.api.errors import ApiError, bad_request, conflict, not_found
from services.api.jobs import find_owned_job
from services.auth import access
from services.auth.access import can_read, can_write
from services.auth.accounts import check_visibility
from services.auth.seam import current_user, login_required, open_to_anonymous
from services.exports import check_format, export_weights
from services.jobs.store import ENDED
from services.weights_store import WeightsStoreError, final_metrics, publish, weights_dir

bp = Blueprint("weights", __name__)


def _dir() -> Path:
    return weights_dir(current_app.extensions["cauchy"].settings.home)


def with_url(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with the URL of its file and of each export's."""
    exports = {fmt: {**record, "url": f"/weights/{record['file']}"} for fmt, record in entry.get("exports", {}).items()}
    return {**entry, "url": f"/weights/{entry['file']}", **({"exports": exports} if exports else {})}


def readable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries the caller may read (public ones for everybody, signed in or not)."""
    user = current_user()
    return [entry for entry in entries if entry.get("visibility") == access.PUBLIC
            or can_read(user, entry.get("owner") or "", entry.get("visibility"))]


@bp.get("/api/v1/weights")
def index() -> ResponseReturnValue:
    return jsonify({"weights": [with_url(entry) for entry in reversed(readable(read_manifest(_dir())))]})


@bp.post("/api/v1/jobs/<int:job_id>/publish")
def publish_job(job_id: int) -> ResponseReturnValue:
    """Publish the job's best checkpoint (else its latest) under a new name."""
    svc = current_app.extensions["cauchy"]
    job = find_owned_job(job_id)
    if job.state not in ENDED:
        raise conflict(f"job {job_id} is {job.state}; publish it once it has ended")
    directory = svc.supervisor.job_dir(job_id)
    checkpoint = rundir.model_checkpoint(directory)
    if checkpoint is None:
        raise conflict(f"job {job_id} saved no checkpoint")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request('send a JSON object such as {"name": "small_cnn_digits"}', None, "invalid_body")
    visibility = check_visibility(svc.store, body.get("visibility", access.WEIGHTS_DEFAULT), login_required())
    try:
        entry = publish(_dir(), body.get("name"), checkpoint, hypes=job.hypes,
                        metrics=final_metrics(directory / rundir.METRICS), source_job=job_id,
                        owner=job.user, visibility=visibility)
    except WeightsStoreError as exc:
        raise ApiError(409 if exc.code == "exists" else 400, exc.code, str(exc), exc.field) from None
    response = jsonify(with_url(entry))
    response.status_code = 201
    return response


@bp.post("/api/v1/weights/<name>/export")
def export_entry(name: str) -> ResponseReturnValue:
    """Export the weights ``name`` as ``{"format": "onnx" | "torchscript" | "edge"}`` (their owner or an
    admin); the model is rebuilt from the entry's hypes or the job that trained it. Answers the entry with
    the new export."""
    body = json_object({"format"}, {"format"})
    entry = find_entry(_dir(), name)
    if entry is None or not readable([entry]):
        raise not_found(f"no weights {name!r}")
    if not can_write(login_required(), entry.get("owner") or ""):
        raise ApiError(403, "forbidden", f"weights {name!r} are {entry.get('owner')}'s: only the owner or an admin "
                                         "may export them")
    try:
        fmt = check_format(body["format"])
        job = entry.get("source_job")
        run_dir = current_app.extensions["cauchy"].supervisor.job_dir(job) if isinstance(job, int) else None
        run_dir = run_dir if run_dir is not None and run_dir.is_dir() else None
        if run_dir is None and not (entry.get("hypes") and entry.get("class_names")):
            raise conflict(f"weights {name!r} record no hypes and class names and have no source job on this "
                           "service to rebuild the model from")
        updated = export_weights(_dir(), name, fmt, run_dir)
    except WeightsStoreError as exc:
        raise ApiError({"invalid": 400, "not_found": 404}.get(exc.code, 409), exc.code, str(exc), exc.field) from None
    response = jsonify(with_url(updated))
    response.status_code = 201
    return response


def file_readable(path: str) -> bool:
    """A weights file the caller may fetch: one of an entry it may read, or one of its exports (other
    files are not served)."""
    return any(path in entry_files(entry) for entry in readable(read_manifest(_dir())))


@bp.get("/weights/")
@bp.get("/weights/manifest.json")
@open_to_anonymous
def manifest() -> ResponseReturnValue:
    """The manifest as the caller may see it: without the entries it may not read."""
    response = jsonify({"weights": readable(read_manifest(_dir()))})
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/weights/<path:path>")
@open_to_anonymous
def download(path: str) -> ResponseReturnValue:
    if not file_readable(path):
        raise not_found(f"no weights file {path!r}")
    return send_from_directory(_dir(), path, conditional=True)


@bp.get("/_frontdoor/weights/<path:path>")
@open_to_anonymous
def may_download(path: str) -> ResponseReturnValue:
    """nginx's ``auth_request`` before it serves ``/weights/<path>`` from disk: 204, or 403 (nginx needs 401 or 403)."""
    return Response(status=204 if file_readable(path) else 403)
