"""REST API for jobs under ``/api/v1``: submit, list, show, stop, resume, logs, metrics, artifacts, charts."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue

from cauchy import rundir
from services.api.errors import ApiError, bad_request, conflict, not_found
from services.api.limits import user_limits
from services.api.submission import add_job, job_fields
from services.auth.access import can_read, can_write, readable_by
from services.auth.seam import login_required, open_to_anonymous
from services.datasets.store import DatasetStore
from services.jobs import files
from services.jobs.policies.base import priority_class
from services.jobs.ports import PortsExhausted
from services.jobs.stopping import AlreadyEnded, request_stop
from services.jobs.store import ACTIVE, ENDED, QUEUED, RESUMABLE, STATES, Job, list_row
from services.jobs.supervisor import Supervisor, preemptible
from services.jobs.viewers import visdom_base_url
from services.private import private_dir
from services.visdom_server import VisdomStartError

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")
RESUMABLE_PHASES = ("train", "finetune")
RESUMED = " (resumed)"
MAX_PAGE = 500
MAX_OFFSET = 2**62  # byte offsets and cursors


def services() -> Any:
    return current_app.extensions["cauchy"]


def query_int(name: str, default: int | None, low: int = 0, high: int = MAX_OFFSET) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"expected an integer, got {raw!r}", name) from None
    if not low <= value <= high:
        raise bad_request(f"expected an integer from {low} to {high}, got {value}", name)
    return value


def find_job(job_id: int) -> Job:
    """The job, if the caller may read it; one it may not is as absent as one that never existed (404)."""
    job = services().store.get(job_id)
    if job is None or not can_read(login_required(), job.user, job.visibility):
        raise not_found(f"no job {job_id}")
    return job


def find_owned_job(job_id: int) -> Job:
    """The job, if the caller may change it (its owner or an admin): 403 for a reader, else 404."""
    job = find_job(job_id)
    if not can_write(login_required(), job.user):
        raise ApiError(403, "forbidden", f"job {job_id} is {job.user}'s: only its owner or an admin may change it")
    return job


def summary(row: Sequence[Any]) -> dict[str, Any]:
    """What a list shows, from a row of ``store.LIST_COLUMNS`` (unpacked by position: the cheapest read, a
    page of 500 stays cheap); no file system or process look-ups."""
    (job_id, name, user, visibility, phase, state, priority, gpus_requested, gpus, created_at, started_at,
     ended_at, exit_code, exit_signal, reason, hypes_name, from_job) = row
    return {
        "id": job_id, "name": name, "user": user, "visibility": visibility, "phase": phase, "state": state,
        "priority": priority,
        "resources": {"gpus": gpus_requested, "assigned_gpus": [g for g in gpus.split(",") if g] if gpus else []},
        "created_at": created_at, "started_at": started_at, "ended_at": ended_at,
        "exit_code": exit_code, "exit_signal": exit_signal, "reason": reason,
        "hypes_name": hypes_name, "from_job": from_job,
        "resumable": phase in RESUMABLE_PHASES and state in RESUMABLE,
    }


def detail(job: Job) -> dict[str, Any]:
    svc = services()
    supervisor: Supervisor = svc.supervisor
    directory = supervisor.job_dir(job.id)
    checkpoint = rundir.last_checkpoint(directory)
    base = summary(list_row(job))
    wait = supervisor.waits(job.id) if job.state == QUEUED else None
    position = wait.position if wait else svc.store.queue_position(job) if job.state == QUEUED else None
    return {
        **base,
        "resumable": base["resumable"] and checkpoint is not None,
        "resources": {**base["resources"], "cpu_slots": job.cpu_slots or 1,
                      "processes": job.gpus_requested or job.processes or 1, "nodes": job.nodes or 1,
                      "memory_mb": job.memory_mb,
                      "time_limit_s": job.time_limit_s},
        "priority_class": priority_class(job.priority),
        "queue_position": position,
        "queue": {"position": position, "reason": wait.reason if wait else "not yet considered by the scheduler",
                  "estimated_start": wait.estimated_start if wait else None} if job.state == QUEUED else None,
        "preemptible": preemptible(job.phase, job.preemptible),
        "preemptions": job.preemptions or [],
        "duration_s": ((job.ended_at or time.time()) - job.started_at) if job.started_at else None,
        "hypes": job.hypes, "overrides": job.overrides, "resume_from": job.resume_from,
        "dataset": {"ref": job.dataset, "sha256": job.dataset_sha256} if job.dataset else None,
        "job_dir": str(directory),
        "hypes_upgrade": files.read_json(directory / rundir.HYPES_UPGRADE),
        "last_checkpoint": str(checkpoint) if checkpoint else None,
        "processes": supervisor.processes(job.id) if job.state in ACTIVE or job.visdom_pid else [],
        "visdom": supervisor.viewers.status(job.id),
        "links": {name: url_for(f"jobs.{name}", job_id=job.id)
                  for name in ("logs", "metrics", "artifacts", "charts")},
    }


def created(job: Job) -> ResponseReturnValue:
    services().supervisor.wake()
    response = jsonify(detail(job))
    response.status_code = 201
    response.headers["Location"] = url_for("jobs.show", job_id=job.id)
    return response


@bp.post("/jobs")
def submit() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if body is None:
        raise bad_request("send a JSON object with Content-Type: application/json", None, "invalid_body")
    svc = services()
    fields = job_fields(body, svc.settings, svc.store, login_required(), svc.checker, svc.supervisor.executor.machines())
    user_limits().admit_submission(fields["user"])
    return created(add_job(fields, services().settings, services().store))


@bp.get("/jobs")
def index() -> ResponseReturnValue:
    states = [s for s in request.args.get("state", "").split(",") if s]
    unknown = sorted(set(states) - set(STATES))
    if unknown:
        raise bad_request(f"unknown state {unknown[0]!r}; states: {', '.join(STATES)}", "state")
    limit = query_int("limit", 50, 1, MAX_PAGE)
    offset = query_int("offset", 0)
    readable = readable_by(login_required(), Job.user, Job.visibility)
    jobs, total = services().store.list(states, limit, offset, request.args.get("user"), readable)
    return jsonify({"jobs": [summary(job) for job in jobs], "total": total, "limit": limit, "offset": offset})


@bp.get("/jobs/<int:job_id>")
def show(job_id: int) -> ResponseReturnValue:
    return jsonify(detail(find_job(job_id)))


def stop_job(job_id: int) -> Job:
    """The owner's (or an admin's) stop: queued, cancelled at once; running, SIGTERM, a grace period for the
    checkpoint, then SIGKILL (``services.jobs.stopping``)."""
    find_owned_job(job_id)
    svc = services()
    try:
        job = request_stop(svc.store, svc.supervisor.endings, job_id)
    except AlreadyEnded as exc:
        raise conflict(str(exc)) from None
    svc.supervisor.wake()
    return job


@bp.post("/jobs/<int:job_id>/stop")
def stop(job_id: int) -> ResponseReturnValue:
    response = jsonify(detail(stop_job(job_id)))
    response.status_code = 202
    return response


@bp.post("/jobs/<int:job_id>/resume")
def resume(job_id: int) -> ResponseReturnValue:
    """A new job of the same owner and visibility that continues training from this job's last checkpoint."""
    job = find_owned_job(job_id)
    if job.state not in ENDED:
        raise conflict(f"job {job_id} is {job.state}; stop it before resuming")
    if job.phase not in RESUMABLE_PHASES:
        raise conflict(f"job {job_id} is a {job.phase} job; only training resumes")
    if job.state not in RESUMABLE:
        raise conflict(f"job {job_id} {job.state}: its training is complete, nothing is left to resume")
    source = services().supervisor.job_dir(job_id)
    checkpoint = rundir.last_checkpoint(source)
    if checkpoint is None:
        raise conflict(f"job {job_id} saved no checkpoint")
    if job.dataset_version_id is not None and DatasetStore(services().settings, services().store).version_by_id(
            job.dataset_version_id) is None:
        raise conflict(f"job {job_id} read dataset {job.dataset}, which has been deleted since")
    user_limits().admit_submission(job.user)
    new = services().store.add(
        name=resumed_name(job.name), user=job.user, visibility=job.visibility, phase=job.phase,
        priority=job.priority, gpus_requested=job.gpus_requested, hypes=job.hypes, hypes_name=job.hypes_name,
        overrides=job.overrides, from_job=job.id, resume_from=str(checkpoint), cpu_slots=job.cpu_slots,
        processes=job.processes, nodes=job.nodes,
        memory_mb=job.memory_mb, time_limit_s=job.time_limit_s, preemptible=job.preemptible,
        dataset_version_id=job.dataset_version_id, dataset=job.dataset, dataset_sha256=job.dataset_sha256)
    files.copy_history(source, private_dir(services().supervisor.job_dir(new.id)))
    return created(new)


def resumed_name(name: str) -> str:
    """``digits (resumed)`` for ``digits`` and for ``digits (resumed)`` alike: no pile-up along a chain."""
    while name.endswith(RESUMED):
        name = name.removesuffix(RESUMED)
    return f"{name[:200 - len(RESUMED)]}{RESUMED}"


@bp.get("/jobs/<int:job_id>/logs")
def logs(job_id: int) -> ResponseReturnValue:
    """Incremental: pass the returned ``next_offset`` as ``offset``; without it, the last 64 KiB."""
    find_job(job_id)
    stream = request.args.get("stream", "stdout")
    if stream not in files.LOGS:
        raise bad_request(f"expected one of {', '.join(files.LOGS)}", "stream")
    path = services().supervisor.job_dir(job_id) / files.LOGS[stream]
    chunk = files.read_chunk(path, query_int("offset", None), query_int("limit", files.MAX_CHUNK, 1, files.MAX_CHUNK))
    return jsonify({"stream": stream, **chunk})


@bp.get("/jobs/<int:job_id>/metrics")
def metrics(job_id: int) -> ResponseReturnValue:
    """Events of metrics.jsonl from the cursor ``since`` (0 first, then the returned ``next``)."""
    find_job(job_id)
    path = services().supervisor.job_dir(job_id) / rundir.METRICS
    try:
        return jsonify(files.read_metrics(path, query_int("since", 0), query_int("limit", 10000, 1, files.MAX_METRICS_PAGE)))
    except files.CursorError as exc:
        raise bad_request(str(exc), "since") from None


@bp.get("/jobs/<int:job_id>/artifacts")
def artifacts(job_id: int) -> ResponseReturnValue:
    find_job(job_id)
    items = files.list_artifacts(services().supervisor.job_dir(job_id))
    for item in items:
        item["url"] = url_for("jobs.artifact", job_id=job_id, path=item["path"])
    return jsonify({"artifacts": items})


@bp.get("/jobs/<int:job_id>/artifacts/<path:path>")
def artifact(job_id: int, path: str) -> ResponseReturnValue:
    find_job(job_id)
    return send_from_directory(services().supervisor.job_dir(job_id), path, as_attachment=True)


def _ensure_viewer(job_id: int) -> None:
    job = find_job(job_id)
    if job.state == QUEUED:
        raise conflict(f"job {job_id} has not started yet")
    viewers = services().supervisor.viewers
    with user_limits().viewer_slot(login_required().name, job, viewers):
        try:
            viewers.ensure(job_id)
        except (VisdomStartError, PortsExhausted, OSError) as exc:
            raise ApiError(503, "visdom_unavailable", f"Visdom for job {job_id} did not start: {exc}") from None


@bp.post("/jobs/<int:job_id>/visdom")
def visdom(job_id: int) -> ResponseReturnValue:
    """Make sure the job's Visdom is up (started again from its saved env after the job ended)."""
    _ensure_viewer(job_id)
    return jsonify(services().supervisor.viewers.status(job_id))


@bp.delete("/jobs/<int:job_id>/visdom")
def visdom_stop(job_id: int) -> ResponseReturnValue:
    find_owned_job(job_id)
    if not services().supervisor.viewers.shut(job_id):
        raise conflict(f"job {job_id} has no viewer to shut down (none up, or the job is still running)")
    return jsonify(services().supervisor.viewers.status(job_id))


@bp.get("/jobs/<int:job_id>/charts")
def charts(job_id: int) -> ResponseReturnValue:
    """Open the charts: start the viewer if needed, then go to ``/visdom/<id>/`` (proxied by nginx)."""
    _ensure_viewer(job_id)
    return redirect(visdom_base_url(job_id) + "/")


@bp.get("/health")
@open_to_anonymous
def health() -> ResponseReturnValue:
    svc = services()
    return jsonify({"status": "ok", "gpus": list(svc.settings.gpus), "cpu_slots": svc.settings.cpu_slots,
                    "free_ports": svc.supervisor.viewers.ports.free_count()})


@bp.get("/scheduler")
def scheduler() -> ResponseReturnValue:
    """The policy, the capacity and the admin's rules, and each user's usage and charge (what fair share weighs)."""
    login_required()
    return jsonify(services().supervisor.scheduler_state())
