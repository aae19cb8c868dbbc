"""Turn a submitted job (REST or legacy) into stored fields, validating everything before queueing.

The hypes are resolved in-process with ``cauchy.hypes`` (torch-free), so a bad key is a 400 that
names it and nothing reaches the queue.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cauchy import rundir
from cauchy.datasets.tools.report_files import REPORT
from cauchy.hypes import HypesError, apply_overrides, load_hypes, resolve_hypes
from cauchy.hypes_upgrade import Upgrade, save_report, upgrade
from services.api.errors import ApiError, bad_request
from services.api.jsonbody import json_integer
from services.api.limits import check_job_limits, check_text
from services.auth.access import JOB_DEFAULT, can_read, max_priority
from services.auth.accounts import check_visibility, user_exists
from services.auth.identity import Caller
from services.component_check import CheckUnavailable, ComponentChecker
from services.config import Settings
from services.containment import MAX_JOB_ID, check_hypes
from services.datasets.job_data import dataset_overrides
from services.datasets.pipeline import read_json
from services.datasets.store import DatasetError, DatasetStore, Found
from services.jobs import files
from services.jobs.policies.base import CLASS_PRIORITY
from services.jobs.store import Job, Store
from services.private import private_dir

PHASES = ("train", "test", "finetune")
PRIORITY_RANGE = (-100, 100)


def _int(body: Mapping[str, Any], key: str, default: int, low: int, high: int, field: str | None = None) -> int:
    value = body.get(key, default)
    number = json_integer(value)
    if number is None or not low <= number <= high:
        raise bad_request(f"expected an integer from {low} to {high}, got {json.dumps(value)[:80]}", field or key)
    return number


def _str(body: Mapping[str, Any], key: str, default: str | None, max_len: int = 200) -> str | None:
    value = body.get(key, default)
    return None if value is None else check_text(value, key, max_len)


def load_named_hypes(settings: Settings, name: str) -> dict[str, Any]:
    """A hypes file under the repository's ``hypes/`` directory, by relative name (``.json`` optional)."""
    check_text(name, "hypes", 200)
    root = settings.hypes_dir.resolve()
    path = (root / (name if name.endswith(".json") else name + ".json")).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise bad_request(f"no hypes file {name!r} under hypes/", "hypes", "unknown_hypes")
    try:
        return load_hypes(str(path))
    except HypesError as exc:
        raise bad_request(str(exc), "hypes", "invalid_hypes") from None


def parse_overrides(value: Any) -> list[str]:
    """``["a.b=1"]`` or ``{"a.b": 1}`` -> ``["a.b=1"]`` (the ``--set`` form)."""
    if isinstance(value, Mapping):
        return [f"{key}={json.dumps(item)}" for key, item in value.items()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise bad_request('expected a list of "key.path=value" strings or an object', "overrides")


def resolve(doc: Any, overrides: list[str]) -> tuple[dict[str, Any], Upgrade]:
    """The resolved hypes of a submitted document, an old torchcv one translated first (and how)."""
    try:
        translation = upgrade(doc)
        return resolve_hypes(translation.hypes, overrides), translation
    except HypesError as exc:
        field = f"hypes.{exc.key}" if exc.key else "hypes"
        raise ApiError(400, "invalid_hypes", str(exc), field) from None


def check_components(resolved: dict[str, Any], checker: ComponentChecker | None) -> None:
    """Every component built as training will build it (``run_tasks.py --check``'s check): all problems
    in one 400, the first one's key as its field."""
    if checker is None:
        return
    try:
        problems = checker.check(resolved)
    except CheckUnavailable as exc:
        raise ApiError(503, "check_unavailable", f"{exc}; try again", "hypes") from None
    if problems:
        message = "\n".join(text for _, text in problems)
        raise ApiError(400, "invalid_hypes", message, f"hypes.{problems[0][0]}" if problems[0][0] else "hypes")


def stored_dataset(doc: Any, overrides: list[str], settings: Settings, store: Store,
                   caller: Caller) -> tuple[list[str], Found | None]:
    """``data.dataset`` ("name" or "name@version", after the overrides) resolved to a ready version the
    caller may read: the overrides that point ``data.data_dir`` at its files (and ``data.format`` at its
    format, the split names and reader parameters at those its inspection found: ``job_data``, unless
    given) and pin ``data.dataset`` to that exact version. The job may not also name a folder."""
    try:
        raw = apply_overrides(dict(doc), overrides) if isinstance(doc, Mapping) else {}
    except HypesError:
        return overrides, None  # resolve() reports it with its key
    data = raw.get("data") if isinstance(raw.get("data"), Mapping) else {}
    ref = data.get("dataset")
    if ref is None:
        return overrides, None
    if not isinstance(ref, str) or not ref:
        raise bad_request('expected "name" or "name@version" of a stored dataset', "hypes.data.dataset", "invalid_hypes")
    if data.get("data_dir") is not None:
        raise bad_request("give data.dataset or data.data_dir, not both", "hypes.data.data_dir", "invalid_hypes")
    datasets = DatasetStore(settings, store)
    try:
        found = datasets.resolve(ref, caller)
        read = dataset_overrides(found, read_json(datasets.inspection_dir(found) / REPORT), data,
                                 data.get("format") or found.version.format)
    except DatasetError as exc:
        raise ApiError(exc.status, exc.code, str(exc), exc.field) from None
    pinned = [*overrides, f"data.data_dir={json.dumps(found.version.root)}", f"data.dataset={json.dumps(found.ref)}"]
    if data.get("format") is None and found.version.format:
        pinned.append(f"data.format={json.dumps(found.version.format)}")
    return [*pinned, *read], found


def source_checkpoint(settings: Settings, store: Store, job_id: Any, caller: Caller) -> tuple[int, str]:
    """The checkpoint a test or predict job evaluates: another job's best, else its latest. The caller
    must be able to read that job (one it may not read is reported as missing)."""
    valid = isinstance(job_id, int) and not isinstance(job_id, bool) and 0 < job_id <= MAX_JOB_ID
    source = store.get(job_id) if valid else None
    if source is None or not can_read(caller, source.user, source.visibility):
        raise bad_request(f"no job {json.dumps(job_id)}", "from_job", "unknown_job")
    path = rundir.model_checkpoint(files.job_dir(settings.jobs_dir, source.id))
    if path is None:
        raise bad_request(f"job {source.id} saved no checkpoint", "from_job", "no_checkpoint")
    return source.id, str(path)


def job_priority(body: Mapping[str, Any]) -> int:
    """``priority``: a class name (``low``, ``normal``, ``high``) or an integer from -100 to 100."""
    value = body.get("priority", 0)
    if isinstance(value, str):
        if value not in CLASS_PRIORITY:
            raise bad_request(f"expected one of {', '.join(CLASS_PRIORITY)} or an integer, got {value!r}", "priority")
        return CLASS_PRIORITY[value]
    return _int(body, "priority", 0, *PRIORITY_RANGE)


def job_resources(body: Mapping[str, Any], settings: Settings, machines: list[tuple[int, int]]) -> dict[str, Any]:
    """``resources``: ``{"gpus", "cpu_slots", "processes", "nodes", "memory_mb", "time_limit_s"}`` (all optional),
    as job columns; what the machines cannot give (``machines``: the GPUs and CPU slots of each, largest first,
    ``Executor.machines``) is a 400. A job on N GPUs runs N ranks, one a GPU; a CPU job runs ``processes`` gloo
    ranks, each holding one of its slots; a job on M ``nodes`` has its GPUs, slots and processes on each of M
    machines (docs/distributed.md)."""
    resources = body.get("resources", {"gpus": body.get("gpus", 0)})
    if not isinstance(resources, Mapping) or set(resources) - {"gpus", "cpu_slots", "processes", "nodes", "memory_mb",
                                                               "time_limit_s"}:
        raise bad_request('expected {"gpus": N, "cpu_slots": N, "processes": N, "nodes": N, "memory_mb": N, '
                          '"time_limit_s": S}', "resources")
    nodes = _int(resources, "nodes", 1, 1, 1024, "resources.nodes")
    machines = machines or [(0, 0)]  # an empty cluster: every job is refused for what it asks of one machine
    if nodes > len(machines):
        raise bad_request(f"asked for {nodes} nodes; this service has {len(machines)} machine"
                          f"{'s' if len(machines) != 1 else ''} for jobs (a job spans machines with the ray executor, "
                          "CAUCHY_EXECUTOR=ray)", "resources.nodes", "unsatisfiable")
    # the M machines with the most of each: what each of a job's M nodes can at most be given
    most_gpus = sorted((gpus for gpus, _ in machines), reverse=True)[nodes - 1]
    most_slots = sorted((slots for _, slots in machines), reverse=True)[nodes - 1]
    per, where = ("", "this host has") if nodes == 1 else (f" on each of {nodes} nodes", f"{nodes} machines have at most")
    gpus = _int(resources, "gpus", 0, 0, 64, "resources.gpus")
    if gpus > most_gpus:
        raise bad_request(f"asked for {gpus} GPUs{per}; {where} {most_gpus}", "resources.gpus", "unsatisfiable")
    processes = _int(resources, "processes", gpus or 1, 1, 1024, "resources.processes")
    if gpus and processes != gpus:
        raise bad_request(f"a job on {gpus} GPUs runs {gpus} processes, one a GPU; leave processes out",
                          "resources.processes")
    cpu_slots = _int(resources, "cpu_slots", 1 if gpus else processes, 1, 1024, "resources.cpu_slots")
    if not gpus and processes > most_slots:
        raise bad_request(f"asked for {processes} processes (one a CPU slot){per}; {where} {most_slots} "
                          "CPU slots", "resources.processes", "unsatisfiable")
    if not gpus and processes > cpu_slots:
        raise bad_request(f"{processes} processes need as many CPU slots (each holds one); cpu_slots is {cpu_slots}",
                          "resources.processes")
    if not gpus and cpu_slots > most_slots:
        raise bad_request(f"asked for {cpu_slots} CPU slots{per}; {where} {most_slots}",
                          "resources.cpu_slots", "unsatisfiable")
    memory_mb = _int(resources, "memory_mb", 0, 0, 2**31 - 1, "resources.memory_mb")
    if settings.memory_mb and memory_mb > settings.memory_mb:
        raise bad_request(f"asked for {memory_mb} MB; jobs may have {settings.memory_mb} MB in all",
                          "resources.memory_mb", "unsatisfiable")
    limit = resources.get("time_limit_s")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit < 1e9):
        raise bad_request(f"expected a number of seconds above 0, got {json.dumps(limit)[:80]}", "resources.time_limit_s")
    return {"gpus_requested": gpus, "cpu_slots": cpu_slots, "processes": None if gpus else processes,
            "nodes": nodes if nodes > 1 else None,
            "memory_mb": memory_mb or None,
            "time_limit_s": float(limit) if limit is not None else None}


def allowed_priority(priority: int, caller: Caller) -> int:
    """Priority above normal (0) is an admin's to give: members up to the max_priority an admin set them."""
    if priority > max_priority(caller):
        raise ApiError(403, "priority_not_allowed", f"priority {priority} is above your maximum of {max_priority(caller)}; "
                                                    "an admin may raise it", "priority")
    return priority


def owner_of(body: Mapping[str, Any], store: Store, caller: Caller) -> str:
    """The caller; an admin may submit for another user by naming them in ``user``."""
    user = _str(body, "user", None, 100)
    if user is None or user == caller.name:
        return caller.name
    if not caller.is_admin:
        raise ApiError(403, "forbidden", "only an admin may submit a job for another user", "user")
    if not user_exists(store, user):
        raise bad_request(f"no user {user!r}", "user", "unknown_user")
    return user


def job_fields(body: Any, settings: Settings, store: Store, caller: Caller, checker: ComponentChecker | None,
               machines: list[tuple[int, int]]) -> dict[str, Any]:
    """The columns of a new job from a ``POST /jobs`` body (see the OpenAPI document for its shape), submitted by
    ``caller``; ``machines``: the GPUs and CPU slots of each machine a job may run on (``Executor.machines``)."""
    if not isinstance(body, Mapping):
        raise bad_request("the request body must be a JSON object", None, "invalid_body")
    unknown = sorted(set(body) - {"hypes", "overrides", "phase", "resources", "gpus", "priority", "name", "user",
                                  "from_job", "visibility", "preemptible"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}", unknown[0])
    hypes = body.get("hypes")
    hypes_name = None
    if isinstance(hypes, str):
        hypes_name, hypes = hypes, load_named_hypes(settings, hypes)
    elif not isinstance(hypes, Mapping):
        raise bad_request("expected a hypes object or the name of a file under hypes/", "hypes")
    overrides = parse_overrides(body.get("overrides", []))
    phase = body.get("phase", "train")
    if phase not in PHASES:
        raise bad_request(f"expected one of {', '.join(PHASES)}, got {json.dumps(phase)}", "phase")
    from_job, resume_from = None, None
    if body.get("from_job") is not None:
        if phase != "test":
            raise bad_request("from_job is for the test phase: resume training with POST /jobs/<id>/resume, "
                              "finetune from published weights (network.pretrained)", "from_job")
        from_job, resume_from = source_checkpoint(settings, store, body["from_job"], caller)
    resources = job_resources(body, settings, machines)
    preemptible = body.get("preemptible", True)
    if not isinstance(preemptible, bool):
        raise bad_request("expected true or false", "preemptible")
    pinned, dataset = stored_dataset(hypes, overrides, settings, store, caller)
    resolved, translation = resolve(hypes, pinned)
    check_components(resolved, checker)
    check_job_limits(settings, resolved)
    check_hypes(settings, store, resolved, caller)
    return {
        "dataset_version_id": dataset.version.id if dataset else None,
        "dataset": dataset.ref if dataset else None,
        "dataset_sha256": dataset.version.sha256 if dataset else None,
        "hypes": resolved,
        "hypes_name": hypes_name,
        "overrides": overrides,
        "phase": phase,
        "from_job": from_job,
        "resume_from": resume_from,
        **resources,
        "preemptible": preemptible,
        "priority": allowed_priority(job_priority(body), caller),
        "name": _str(body, "name", None) or Path(hypes_name or resolved.get("dataset") or "job").stem,
        "user": owner_of(body, store, caller),
        "visibility": check_visibility(store, body.get("visibility", JOB_DEFAULT), caller),
        "translation": translation,
    }


def add_job(fields: dict[str, Any], settings: Settings, store: Store) -> Job:
    """Stores the job of :func:`job_fields`; a torchcv file's translation report goes into its job
    directory (``rundir.HYPES_UPGRADE``), where the job page reads it."""
    translation: Upgrade = fields.pop("translation")
    job = store.add(**fields)
    if translation.is_torchcv:
        save_report(translation, private_dir(files.job_dir(settings.jobs_dir, job.id)) / rundir.HYPES_UPGRADE)
    return job
