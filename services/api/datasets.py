"""REST API for datasets under ``/api/v1/datasets``: resumable uploads, versions, their inspection, deletion.

An upload is a create call (``POST /datasets/uploads``), ``PUT``s of ``Content-Range`` chunks streamed
to disk (``GET``/``HEAD`` tells how many bytes arrived, so a client resumes from there), and a finish
call that makes the archive a new version, unpacked and inspected in the background
(``services.datasets.pipeline``). Owners and visibility follow ``services.auth.access``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue

import cauchy.tasks  # noqa: F401  (registers the tasks; torch-free)
from cauchy.datasets.tools.report_files import PREVIEWS_DIR, PROGRESS, REPORT, STATS
from cauchy.manifest import NAME_RE
from cauchy.registry import TASKS
from services.api.errors import ApiError, bad_request, error_body, not_found
from services.api.jsonbody import json_integer
from services.auth.access import PRIVATE, can_read, can_write
from services.auth.accounts import check_visibility
from services.auth.seam import admin_required, login_required
from services.containment import admin_roots, resolve_data_path
from services.datasets.models import Dataset, DatasetVersion, Upload
from services.datasets.pipeline import Pipeline, read_json
from services.datasets.store import DatasetError, DatasetStore, Found

bp = Blueprint("datasets", __name__, url_prefix="/api/v1/datasets")
DATASETS_KEY = "cauchy.datasets"
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
CONTENT_RANGE = re.compile(r"bytes (\d{1,15})-(\d{1,15})/(\d{1,15})")
MAX_SIZE = 2**50
FORMAT_RE = re.compile(r"[A-Za-z0-9_.-]{1,40}")  # a reader's name
INSPECTION_FILES = {"report": REPORT, "stats": STATS, "progress": PROGRESS}


def datasets() -> DatasetStore:
    return current_app.extensions[DATASETS_KEY]


def pipeline() -> Pipeline:
    return current_app.extensions["cauchy"].datasets_pipeline


@bp.errorhandler(DatasetError)
def dataset_error(exc: DatasetError) -> ResponseReturnValue:
    return jsonify(error_body(exc.code, str(exc), exc.field)), exc.status


def version_json(dataset: Dataset, version: DatasetVersion) -> dict[str, Any]:
    base = url_for("datasets.show_version", dataset_id=dataset.id, number=version.version)
    return {"dataset_id": dataset.id, "name": dataset.name, "version": version.version,
            "ref": f"{dataset.name}@{version.version}", "state": version.state, "reason": version.reason,
            "source": version.source, "task": version.task, "format": version.format, "sha256": version.sha256,
            "size": version.size, "files": version.files, "created_at": version.created_at, "ready_at": version.ready_at,
            "links": {name: f"{base}/{name}" for name in (*INSPECTION_FILES, "previews")}}


def dataset_json(dataset: Dataset, versions: list[DatasetVersion]) -> dict[str, Any]:
    ready = [v.version for v in versions if v.state == "ready"]
    return {"id": dataset.id, "name": dataset.name, "owner": dataset.owner, "visibility": dataset.visibility,
            "created_at": dataset.created_at, "latest_ready": ready[-1] if ready else None,
            "versions": [version_json(dataset, version) for version in versions]}


def upload_json(upload: Upload, found: Found) -> dict[str, Any]:
    return {"id": upload.id, "dataset_id": found.dataset.id, "name": found.dataset.name,
            "version": found.version.version, "size": upload.size, "offset": datasets().received(upload),
            "url": url_for("datasets.upload_status", upload_id=upload.id)}


def find_dataset(dataset_id: int, write: bool = False) -> Dataset:
    """The dataset if the caller may read it (404 otherwise); with ``write``, change it too (403 for a reader)."""
    dataset = datasets().dataset(dataset_id)
    caller = login_required()
    if dataset is None or not can_read(caller, dataset.owner, dataset.visibility):
        raise not_found(f"no dataset {dataset_id}")
    if write and not can_write(caller, dataset.owner):
        raise ApiError(403, "forbidden", f"dataset {dataset.name!r} is {dataset.owner}'s: only its owner or an admin "
                                         "may change it")
    return dataset


def find_version(dataset_id: int, number: int, write: bool = False) -> Found:
    dataset = find_dataset(dataset_id, write)
    version = datasets().version(dataset.id, number)
    if version is None:
        raise not_found(f"dataset {dataset.name!r} has no version {number}")
    return Found(dataset, version)


def find_upload(upload_id: str) -> tuple[Upload, Found]:
    """The caller's own upload (an admin's: anyone's); others are as absent as unknown ones."""
    upload = datasets().upload(upload_id) if UPLOAD_ID.fullmatch(upload_id) else None
    caller = login_required()
    if upload is None or not can_write(caller, upload.owner):
        raise not_found(f"no upload {upload_id!r} in progress")
    return upload, datasets().version_by_id(upload.version_id)


def json_object(allowed: set[str], required: set[str]) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("send a JSON object with Content-Type: application/json", None, "invalid_body")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}", unknown[0])
    missing = sorted(required - set(body))
    if missing:
        raise bad_request(f"{missing[0]} is required", missing[0])
    return body


def described(body: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    """Name, visibility, task and format of a new version, checked."""
    name = body["name"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise bad_request("expected 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit", "name")
    task = body.get("task")
    if task is not None and not (isinstance(task, str) and task in TASKS):
        raise bad_request(f"unknown task {json.dumps(task)[:40]}; tasks: {', '.join(TASKS.names())}", "task")
    fmt = body.get("format")
    if fmt is not None and not (isinstance(fmt, str) and FORMAT_RE.fullmatch(fmt)):
        raise bad_request("expected a reader's name such as image_folder or coco (letters, digits, '_', '.', '-')",
                          "format")
    visibility = check_visibility(current_app.extensions["cauchy"].store, body.get("visibility", PRIVATE),
                                  login_required())
    return name, visibility, task, fmt


@bp.post("/uploads")
def create_upload() -> ResponseReturnValue:
    body = json_object({"name", "size", "task", "format", "visibility"}, {"name", "size"})
    name, visibility, task, fmt = described(body)
    size = json_integer(body["size"])
    if size is None or not 0 < size <= MAX_SIZE:
        raise bad_request(f"expected the archive's size in bytes, from 1 to {MAX_SIZE}", "size")
    upload, found = datasets().create_upload(login_required(), name, size, visibility, task, fmt)
    response = jsonify(upload_json(upload, found))
    response.status_code = 201
    response.headers["Location"] = url_for("datasets.upload_status", upload_id=upload.id)
    return response


@bp.get("/uploads/<upload_id>")
def upload_status(upload_id: str) -> ResponseReturnValue:
    """How many bytes arrived: resume from ``offset`` (also in the ``Upload-Offset`` header, for ``HEAD``)."""
    upload, found = find_upload(upload_id)
    body = upload_json(upload, found)
    response = jsonify(body)
    response.headers["Upload-Offset"] = str(body["offset"])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.put("/uploads/<upload_id>")
def upload_chunk(upload_id: str) -> ResponseReturnValue:
    """``Content-Range: bytes FIRST-LAST/SIZE``, FIRST being the offset received so far; the body is
    streamed to disk (never held whole), and a body cut short adds nothing."""
    upload, found = find_upload(upload_id)
    settings = current_app.extensions["cauchy"].settings
    request.max_content_length = settings.dataset_chunk_mb * 2**20
    match = CONTENT_RANGE.fullmatch(request.headers.get("Content-Range", ""))
    if match is None:
        raise bad_request("expected Content-Range: bytes FIRST-LAST/SIZE", "Content-Range", "invalid_range")
    first, last, total = (int(group) for group in match.groups())
    length = last - first + 1
    if length <= 0 or request.content_length != length:
        raise bad_request(f"the range holds {max(length, 0)} bytes, the body {request.content_length}; they must match "
                          "(and may not be empty)", "Content-Range", "invalid_range")
    offset = datasets().append(upload, first, total, length, request.stream)
    response = jsonify({**upload_json(upload, found), "offset": offset})
    response.headers["Upload-Offset"] = str(offset)
    return response


@bp.delete("/uploads/<upload_id>")
def abandon_upload(upload_id: str) -> ResponseReturnValue:
    upload, _ = find_upload(upload_id)
    datasets().abandon(upload)
    return "", 204


@bp.post("/uploads/<upload_id>/finish")
def finish_upload(upload_id: str) -> ResponseReturnValue:
    """All bytes arrived: the archive becomes the version, unpacked and inspected in the background."""
    upload, _ = find_upload(upload_id)
    found = datasets().finish(upload)
    pipeline().submit(found.version.id)
    return accepted(found)


def accepted(found: Found) -> ResponseReturnValue:
    response = jsonify(version_json(found.dataset, datasets().version(found.dataset.id, found.version.version)))
    response.status_code = 202
    response.headers["Location"] = url_for("datasets.show_version", dataset_id=found.dataset.id,
                                           number=found.version.version)
    return response


@bp.post("/register")
def register() -> ResponseReturnValue:
    """(admin) A folder under CAUCHY_DATA_ROOTS becomes a version where it is, without copying."""
    caller = admin_required()
    body = json_object({"name", "path", "task", "format", "visibility"}, {"name", "path"})
    name, visibility, task, fmt = described(body)
    path = body["path"]
    if not isinstance(path, str) or not path:
        raise bad_request("expected a folder under CAUCHY_DATA_ROOTS", "path")
    settings = current_app.extensions["cauchy"].settings
    root = resolve_data_path(settings, path, "path", admin_roots(settings))
    if not root.is_dir():
        raise bad_request(f"{path!r} is not a folder", "path")
    found = datasets().register(caller, name, root, visibility, task, fmt)
    pipeline().submit(found.version.id)
    return accepted(found)


@bp.get("")
def index() -> ResponseReturnValue:
    return jsonify({"datasets": [dataset_json(d, v) for d, v in datasets().listing(login_required())]})


@bp.get("/<int:dataset_id>")
def show(dataset_id: int) -> ResponseReturnValue:
    dataset = find_dataset(dataset_id)
    return jsonify(dataset_json(dataset, datasets().versions(dataset.id)))


@bp.delete("/<int:dataset_id>")
def delete(dataset_id: int) -> ResponseReturnValue:
    dataset = find_dataset(dataset_id, write=True)
    datasets().delete(dataset, datasets().versions(dataset.id), whole=True)
    return "", 204


@bp.get("/<int:dataset_id>/versions")
def versions(dataset_id: int) -> ResponseReturnValue:
    dataset = find_dataset(dataset_id)
    return jsonify({"versions": [version_json(dataset, v) for v in datasets().versions(dataset.id)]})


@bp.get("/<int:dataset_id>/versions/<int:number>")
def show_version(dataset_id: int, number: int) -> ResponseReturnValue:
    found = find_version(dataset_id, number)
    return jsonify(version_json(found.dataset, found.version))


@bp.delete("/<int:dataset_id>/versions/<int:number>")
def delete_version(dataset_id: int, number: int) -> ResponseReturnValue:
    found = find_version(dataset_id, number, write=True)
    datasets().delete(found.dataset, [found.version], whole=False)
    return "", 204


def inspection_file(found: Found, name: str) -> ResponseReturnValue:
    doc = read_json(datasets().inspection_dir(found) / name)
    if doc is None:
        raise not_found(f"{found.ref} has no {name} yet ({found.version.state})")
    response = jsonify(doc)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/<int:dataset_id>/versions/<int:number>/report")
def report(dataset_id: int, number: int) -> ResponseReturnValue:
    """What the inspection found: ok, task, format, splits, class names, counts and the first problems."""
    return inspection_file(find_version(dataset_id, number), REPORT)


@bp.get("/<int:dataset_id>/versions/<int:number>/stats")
def stats(dataset_id: int, number: int) -> ResponseReturnValue:
    return inspection_file(find_version(dataset_id, number), STATS)


@bp.get("/<int:dataset_id>/versions/<int:number>/progress")
def progress(dataset_id: int, number: int) -> ResponseReturnValue:
    return inspection_file(find_version(dataset_id, number), PROGRESS)


@bp.get("/<int:dataset_id>/stats")
def latest_stats(dataset_id: int) -> ResponseReturnValue:
    """The statistics of the newest ready version."""
    dataset = find_dataset(dataset_id)
    ready = [v for v in datasets().versions(dataset.id) if v.state == "ready"]
    if not ready:
        raise not_found(f"dataset {dataset.name!r} has no ready version")
    return inspection_file(Found(dataset, ready[-1]), STATS)


def previews_dir(found: Found) -> Path:
    return datasets().inspection_dir(found) / PREVIEWS_DIR


@bp.get("/<int:dataset_id>/versions/<int:number>/previews")
def previews(dataset_id: int, number: int) -> ResponseReturnValue:
    found = find_version(dataset_id, number)
    folder = previews_dir(found)
    names = sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []
    base = url_for("datasets.previews", dataset_id=dataset_id, number=number)
    return jsonify({"previews": [{"name": name, "url": f"{base}/{name}"} for name in names]})


@bp.get("/<int:dataset_id>/versions/<int:number>/previews/<name>")
def preview(dataset_id: int, number: int, name: str) -> ResponseReturnValue:
    found = find_version(dataset_id, number)
    if not name.endswith(".jpg"):
        raise not_found(f"no preview {name!r}")
    return send_from_directory(previews_dir(found), name, mimetype="image/jpeg", max_age=3600)
