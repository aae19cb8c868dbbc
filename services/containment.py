"""What a job submitted through the service may read and fetch (issue "jobs stay in their place").

- ``data.data_dir``: under a folder an admin lists in ``CAUCHY_DATA_ROOTS`` (default: the checkout's
  ``data/``, which the shipped hypes use), after symlinks and ``..`` are resolved; a dataset of the
  store (``$CAUCHY_HOME/datasets/``) is named with ``data.dataset`` instead, which checks who may
  read it. The legacy ``test_batch?dir=`` may also read the store.
- ``network.pretrained``: a weights-host name, ``job:<id>`` of a job the submitter may read, or a URL
  under ``CAUCHY_WEIGHTS_URL_PREFIXES`` whose host resolves to public addresses only; never a local
  path. The job applies the same policy again when it fetches (``cauchy.fetch``, pinned address,
  size and time caps), handed over in its environment by ``job_environment``.

``run_tasks.py`` on its own keeps accepting any path and URL: these limits are the service's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cauchy import rundir
from cauchy.fetch import POLICY_ENV, FetchPolicy, FetchRefused, check_url, is_url, is_weights_name, job_reference
from cauchy.manifest import find_entry
from services.api.errors import bad_request
from services.auth.access import can_read
from services.auth.identity import Caller
from services.config import Settings
from services.jobs import files
from services.jobs.store import Store
from services.weights_store import weights_dir

PRETRAINED = "hypes.network.pretrained"
MAX_JOB_ID = 2**63 - 1


def data_roots(settings: Settings) -> list[Path]:
    """The folders the legacy ``test_batch`` may read, resolved: the datasets store first, then the admin's list."""
    return [Path(os.path.realpath(root)) for root in (settings.datasets_dir, *settings.data_roots)]


def admin_roots(settings: Settings) -> list[Path]:
    """The folders a job may name in ``data.data_dir`` and an admin may register as a dataset: the admin's list.
    The datasets store is not one of them: a stored dataset is named with ``data.dataset``, which checks who
    may read it."""
    return [Path(os.path.realpath(root)) for root in settings.data_roots]


def resolve_data_path(settings: Settings, value: str, field: str, roots: list[Path] | None = None) -> Path:
    """``value`` (relative to the checkout, as the job sees it) resolved, if it lies in one of ``roots``
    (default ``data_roots``); else a 400."""
    try:
        path = Path(os.path.realpath(settings.repo_root / value))
    except (ValueError, OSError) as exc:  # a NUL byte, a name too long
        raise bad_request(f"not a usable path: {exc}", field) from None
    roots = data_roots(settings) if roots is None else roots
    if not any(path.is_relative_to(root) for root in roots):
        if path.is_relative_to(os.path.realpath(settings.datasets_dir)):
            raise bad_request(f"{value!r} is in the datasets store: name a stored dataset with data.dataset "
                              "(\"name\" or \"name@version\") instead", field, "forbidden_path")
        raise bad_request(f"{value!r} is outside the data folders jobs may read ("
                          + ", ".join(str(root) for root in roots) + "; an admin adds folders with CAUCHY_DATA_ROOTS)",
                          field, "forbidden_path")
    return path


def fetch_policy(settings: Settings, aliases: dict[str, str] | None = None) -> FetchPolicy:
    """The policy of jobs the service starts."""
    return FetchPolicy(local_paths=False, url_prefixes=settings.weights_url_prefixes, public_only=True,
                       max_bytes=settings.weights_max_mb * 2**20, timeout_s=settings.weights_timeout_s,
                       aliases=aliases or {})


def job_checkpoint(settings: Settings, job_id: int) -> Path | None:
    return rundir.model_checkpoint(files.job_dir(settings.jobs_dir, job_id))


def check_pretrained(settings: Settings, store: Store, ref: str | None, caller: Caller | None) -> None:
    """A 400 naming ``hypes.network.pretrained`` unless the service may let ``caller``'s job fetch ``ref``:
    a job or a weights entry the caller may not read is as unknown as one that does not exist."""
    if ref is None:
        return
    job_id = job_reference(ref)
    if job_id is not None:
        job = store.get(job_id) if job_id <= MAX_JOB_ID else None
        if job is None or not can_read(caller, job.user, job.visibility):
            raise bad_request(f"{ref}: no job {job_id} you may read", PRETRAINED, "unknown_job")
        if job_checkpoint(settings, job.id) is None:
            raise bad_request(f"{ref}: job {job.id} saved no checkpoint", PRETRAINED, "no_checkpoint")
    elif is_url(ref):
        try:
            check_url(ref, fetch_policy(settings))
        except FetchRefused as exc:
            raise bad_request(str(exc), PRETRAINED, "forbidden_url") from None
    elif is_weights_name(ref):
        entry = find_entry(weights_dir(settings.home), ref)
        if entry is None or not can_read(caller, entry.get("owner") or "", entry.get("visibility")):
            raise bad_request(f"no published weights named {ref!r} (GET /api/v1/weights lists them)", PRETRAINED,
                              "unknown_weights")
    else:
        raise bad_request(f"{ref!r}: local paths are refused; name published weights, job:<id> or a URL under an "
                          "allowed prefix", PRETRAINED, "forbidden_path")


def check_hypes(settings: Settings, store: Store, hypes: dict[str, Any], caller: Caller | None) -> None:
    """Everything in resolved hypes that reads the server or the network (a stored dataset named in
    ``data.dataset`` was checked when the service resolved it to ``data.data_dir``)."""
    if not hypes["data"].get("dataset"):
        resolve_data_path(settings, hypes["data"]["data_dir"], "hypes.data.data_dir", admin_roots(settings))
    check_pretrained(settings, store, hypes["network"]["pretrained"], caller)


def job_environment(settings: Settings, hypes: dict[str, Any]) -> dict[str, str]:
    """What the task process needs to fetch its weights under the service's policy."""
    ref = hypes.get("network", {}).get("pretrained")
    aliases = {}
    if ref is not None and (job_id := job_reference(ref)) is not None:
        checkpoint = job_checkpoint(settings, job_id)
        if checkpoint is not None:
            aliases[ref] = str(checkpoint)
    return {POLICY_ENV: fetch_policy(settings, aliases).to_json()}
