"""Weights host API: ``GET /api/v1/weights`` (the manifest), ``POST /api/v1/jobs/<id>/publish``, and
``/weights/<file>`` (range requests) for when the service stands in for nginx."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_from_directory
from flask.typing import ResponseReturnValue

from cauchy import rundir
from cauchy.manifest import read_manifest
from services.api.errors import ApiError, bad_request, conflict
from services.api.jobs import find_job
from services.jobs.store import ENDED
from services.weights_store import WeightsStoreError, final_metrics, publish, weights_dir

bp = Blueprint("weights", __name__)


def _dir() -> Path:
    return weights_dir(current_app.extensions["cauchy"].settings.home)


def with_url(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "url": f"/weights/{entry['file']}"}


@bp.get("/api/v1/weights")
def index() -> ResponseReturnValue:
    return jsonify({"weights": [with_url(entry) for entry in reversed(read_manifest(_dir()))]})


@bp.post("/api/v1/jobs/<int:job_id>/publish")
def publish_job(job_id: int) -> ResponseReturnValue:
    """Publish the job's best checkpoint (else its latest) under a new name."""
    svc = current_app.extensions["cauchy"]
    job = find_job(job_id)
    if job.state not in ENDED:
        raise conflict(f"job {job_id} is {job.state}; publish it once it has ended")
    directory = svc.supervisor.job_dir(job_id)
    checkpoint = rundir.model_checkpoint(directory)
    if checkpoint is None:
        raise conflict(f"job {job_id} saved no checkpoint")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request('send a JSON object such as {"name": "small_cnn_digits"}', None, "invalid_body")
    try:
        entry = publish(_dir(), body.get("name"), checkpoint, hypes=job.hypes,
                        metrics=final_metrics(directory / rundir.METRICS), source_job=job_id)
    except WeightsStoreError as exc:
        raise ApiError(409 if exc.code == "exists" else 400, exc.code, str(exc), exc.field) from None
    response = jsonify(with_url(entry))
    response.status_code = 201
    return response


@bp.get("/weights/")
@bp.get("/weights/<path:path>")
def download(path: str = "manifest.json") -> ResponseReturnValue:
    return send_from_directory(_dir(), path, conditional=True)
