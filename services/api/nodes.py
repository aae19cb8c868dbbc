"""The nodes of the cluster and what a job on another node sends home.

- ``GET|PUT /api/v1/jobs/<id>/node/files/<name>``: a running job's node (``services.executors.node_run``)
  downloads its hypes and the checkpoint it resumes from, appends its logs and metrics at an offset, and
  uploads checkpoints and results in chunks renamed into place at the last (atomic). It authenticates with
  its run's token (``X-Cauchy-Job-Token``), not as a user: the routes are closed to everyone else.
- ``GET /api/v1/nodes`` (admin): the executor's nodes with their GPUs, load and jobs, and the pairing key
  with the command that joins a machine to the cluster; ``POST /api/v1/nodes/<name>/drain`` stops sending
  jobs there (``{"drain": false}`` takes it back).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_file
from flask.typing import ResponseReturnValue

from cauchy import rundir
from services.api.errors import ApiError, bad_request, conflict, not_found
from services.auth.seam import admin_required, open_to_anonymous
from services.executors.jobtoken import token_matches
from services.executors.node_run import TOKEN_HEADER, appended
from services.jobs import files
from services.jobs.store import ACTIVE

bp = Blueprint("nodes", __name__, url_prefix="/api/v1")
PART = ".part"  # an upload in progress, beside its final name


def services() -> Any:
    return current_app.extensions["cauchy"]


def _node_job(job_id: int) -> Path:
    """The directory of a running job whose node sent its run's token (403 otherwise)."""
    svc = services()
    job = svc.store.get(job_id)
    if job is None:
        raise not_found(f"no job {job_id}")
    directory = files.job_dir(svc.settings.jobs_dir, job_id)
    record = files.read_json(directory / files.RAY_RUN) or {}
    sent = request.headers.get(TOKEN_HEADER, "")
    if job.state not in ACTIVE or not record or not sent or not token_matches(svc.settings.home, record["submission_id"], sent):
        raise ApiError(403, "forbidden", f"send the token of job {job_id}'s current run in {TOKEN_HEADER}")
    return directory


def _target(directory: Path, path: str) -> Path:
    target = (directory / path).resolve()
    if directory.resolve() not in target.parents or path in (rundir.HYPES, files.RAY_RUN) or path.endswith(PART):
        raise bad_request(f"a node may not write {path!r}", "path")
    return target


@bp.get("/jobs/<int:job_id>/node/files/<path:path>")
@open_to_anonymous
def node_download(job_id: int, path: str) -> ResponseReturnValue:
    """A file of the job directory: the hypes, the checkpoint and metrics a resumed run continues."""
    directory = _node_job(job_id)
    target = (directory / path).resolve()
    if directory.resolve() not in target.parents or not target.is_file():
        raise not_found(f"job {job_id} has no file {path!r}")
    return send_file(target, mimetype="application/octet-stream")


def _offset() -> int:
    raw = request.args.get("offset", "")
    if not raw.isdigit():
        raise bad_request(f"expected a byte offset, got {raw!r}", "offset")
    return int(raw)


@bp.put("/jobs/<int:job_id>/node/files/<path:path>")
@open_to_anonymous
def node_upload(job_id: int, path: str) -> ResponseReturnValue:
    """Write the body at ``offset``: logs and metrics are appended in place (0 starts them again); other
    files go to ``<name>.part`` and replace ``<name>`` when ``done=1``. An offset that is not the size the
    service has is a 409 with that size (the node resends from there)."""
    target = _target(_node_job(job_id), path)
    offset, data, done = _offset(), request.get_data(), request.args.get("done") == "1"
    writing = target if appended(path) else target.with_name(target.name + PART)
    size = writing.stat().st_size if writing.exists() else 0
    if offset not in (0, size):
        return jsonify({"error": {"code": "offset_mismatch", "message": f"{path} has {size} bytes, not {offset}",
                                  "field": "offset"}, "size": size}), 409
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(writing, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if offset == 0 else os.O_APPEND), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        if done and writing != target:
            fh.flush()
            os.fsync(fh.fileno())
    if done and writing != target:
        os.replace(writing, target)  # atomic: readers see the previous checkpoint or this one, whole
    return jsonify({"path": path, "size": offset + len(data)})


@bp.get("/nodes")
def nodes() -> ResponseReturnValue:
    admin_required()
    svc = services()
    executor = svc.supervisor.executor
    return jsonify({"executor": executor.name, "nodes": executor.nodes(), **executor.pairing()})


@bp.post("/nodes/<name>/drain")
def drain(name: str) -> ResponseReturnValue:
    admin_required()
    body = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(body, dict):
        raise bad_request("expected a JSON object such as {\"drain\": true}")
    if set(body) - {"drain"}:
        raise bad_request(f"unknown fields: {', '.join(sorted(set(body) - {'drain'}))}", sorted(set(body) - {"drain"})[0])
    if not isinstance(body.get("drain", True), bool):
        raise bad_request("expected true or false", "drain")
    executor = services().supervisor.executor
    try:
        executor.drain(name, body.get("drain", True))
    except LookupError as exc:
        raise not_found(str(exc)) from None
    except NotImplementedError as exc:
        raise conflict(str(exc)) from None
    services().supervisor.wake()
    return jsonify({"node": name, "drained": body.get("drain", True)})
