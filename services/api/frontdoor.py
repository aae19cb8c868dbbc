"""What the front door needs from the service.

- ``/_frontdoor/visdom/<id>``: nginx's ``auth_request`` for ``/visdom/<id>/``, with the caller's
  cookie or token; 204 with the job's Visdom port in ``X-Visdom-Port`` when the caller may read that
  job and it has a live viewer, else 403. nginx proxies only to a port named here, so a browser
  reaches a job's Visdom and no other local port. nginx does not proxy ``/_frontdoor/`` from outside.
- ``/api/v1/templates``: the hypes files under ``hypes/`` the page offers as templates.
- ``/`` and the page's files, and ``/visdom/<id>/`` as a redirect to the viewer's own port on the
  host of ``CAUCHY_PUBLIC_URL`` (never the request's ``Host``), for when there is no nginx and the
  service itself answers on the front door's port.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, send_from_directory
from flask.typing import ResponseReturnValue

from services.api.errors import ApiError
from services.api.submission import load_named_hypes
from services.auth.access import can_read
from services.auth.seam import current_user, open_to_anonymous

WEBUI_DIR = "webui"
bp = Blueprint("frontdoor", __name__)


def viewer_port(job_id: int) -> int | None:
    """The port of the job's live viewer, if the caller may read the job."""
    job = current_app.extensions["cauchy"].store.get(job_id)
    if job is None or not can_read(current_user(), job.user, job.visibility):
        return None
    viewer = current_app.extensions["cauchy"].supervisor.viewers.get(job_id)
    return viewer.port if viewer is not None and viewer.proc.alive() else None


@bp.get("/api/v1/templates")
def templates() -> ResponseReturnValue:
    """Every hypes file, by task (its first directory), with the document itself."""
    settings = current_app.extensions["cauchy"].settings
    items = []
    for path in sorted(settings.hypes_dir.glob("*/*.json")):
        name = path.relative_to(settings.hypes_dir).as_posix()
        try:
            items.append({"name": name, "task": path.parent.name, "hypes": load_named_hypes(settings, name)})
        except ApiError as exc:  # one broken file must not hide the others
            items.append({"name": name, "task": path.parent.name, "hypes": None, "error": exc.message})
    return jsonify({"templates": items})


@bp.get("/_frontdoor/visdom/<int:job_id>")
@open_to_anonymous
def visdom_port(job_id: int) -> ResponseReturnValue:
    port = viewer_port(job_id)
    if port is None:
        return Response(status=403)
    return Response(status=204, headers={"X-Visdom-Port": str(port)})


@bp.get("/visdom/<int:job_id>/")
def visdom_direct(job_id: int) -> ResponseReturnValue:
    port = viewer_port(job_id)
    if port is None:
        raise ApiError(403, "no_viewer", f"job {job_id} has no Visdom running (open its charts to start one), "
                                         "or it is not yours to see")
    public = urlsplit(current_app.extensions["cauchy"].settings.public_url)
    return redirect(f"{public.scheme}://{public.hostname}:{port}/visdom/{job_id}/")


@bp.get("/")
@bp.get("/assets/<path:path>")
@open_to_anonymous
def page(path: str | None = None) -> ResponseReturnValue:
    root = current_app.extensions["cauchy"].settings.repo_root / WEBUI_DIR
    return send_from_directory(root, f"assets/{path}" if path else "index.html")
