"""Who else sees a thing: ``PATCH /api/v1/jobs/<id>``, ``/datasets/<id>`` and ``/weights/<name>`` with
``{"visibility": "private" | "public" | "group:<name>"}``, by the owner or an admin."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from cauchy.manifest import find_entry
from services.api.datasets import dataset_json, datasets, find_dataset
from services.api.errors import ApiError, bad_request, not_found
from services.api.jobs import detail, find_owned_job, services
from services.api.weights import readable, with_url
from services.auth.access import can_write
from services.auth.accounts import check_visibility
from services.auth.seam import login_required
from services.weights_store import set_visibility, weights_dir

bp = Blueprint("sharing", __name__, url_prefix="/api/v1")


def requested_visibility() -> str:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request('send a JSON object such as {"visibility": "group:vision"}', None, "invalid_body")
    unknown = sorted(set(body) - {"visibility"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}; only visibility can change", unknown[0])
    if "visibility" not in body:
        raise bad_request("expected private, public or group:<name>", "visibility")
    return check_visibility(services().store, body["visibility"], login_required())


@bp.patch("/jobs/<int:job_id>")
def share_job(job_id: int) -> ResponseReturnValue:
    find_owned_job(job_id)
    return jsonify(detail(services().store.update(job_id, visibility=requested_visibility())))


@bp.patch("/datasets/<int:dataset_id>")
def share_dataset(dataset_id: int) -> ResponseReturnValue:
    dataset = find_dataset(dataset_id, write=True)
    datasets().set_visibility(dataset.id, requested_visibility())
    return jsonify(dataset_json(datasets().dataset(dataset.id), datasets().versions(dataset.id)))


@bp.patch("/weights/<name>")
def share_weights(name: str) -> ResponseReturnValue:
    directory = weights_dir(current_app.extensions["cauchy"].settings.home)
    entry: dict[str, Any] | None = find_entry(directory, name)
    if entry is None or not readable([entry]):
        raise not_found(f"no weights {name!r}")
    if not can_write(login_required(), entry.get("owner") or ""):
        raise ApiError(403, "forbidden", f"weights {name!r} are {entry.get('owner')}'s: only the owner or an admin "
                                         "may change who sees them")
    updated = set_visibility(directory, name, requested_visibility())
    if updated is None:
        raise not_found(f"no weights {name!r}")
    return jsonify(with_url(updated))
