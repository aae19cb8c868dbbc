"""What one submission, one user or one request may cost, checked before anything is stored.

Per job (a 400 naming the hypes key): ``data.workers`` at most the cores a job is given, batch sizes,
``solver.max_epoch``/``max_iters``, ``solver.checkpoint.keep``, and the size of the hypes document.
Per user: the number of queued jobs and submissions per minute (429). Names and user names are
short printable text. Viewers of ended jobs are limited per user and overall (429), and so are the
legacy requests that wait for a job (the rest are answered at once with the job id).
"""
from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from services.api.errors import ApiError, bad_request
from services.config import Settings
from services.jobs.store import ENDED, QUEUED, Job, JobRow, Store
from services.jobs.viewers import Viewers
from services.ratelimit import RateLimiter
from services.text import first_unprintable

LIMITS_KEY = "cauchy.limits"
# What the OpenAPI document promises a name may hold: letters, digits, spaces and common punctuation (the
# service refuses less: any control or format character, see check_text).
TEXT_PATTERN = r"^[\w .,:;()@#+=/-]+$"


def too_many(message: str, field: str | None = None, retry_after: float | None = None) -> ApiError:
    """A 429: a per-user or overall limit."""
    return ApiError(429, "too_many", message, field, retry_after)


def check_text(value: Any, field: str, max_len: int) -> str:
    """A name someone reads in a terminal or a page: 1 to ``max_len`` characters, none of them a control
    or format character (no escape sequences, no NUL, no bidirectional overrides)."""
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise bad_request(f"expected a string of 1 to {max_len} characters, got {json.dumps(value)[:80]}", field)
    bad = first_unprintable(value)
    if bad is not None:
        raise bad_request(f"control character U+{ord(bad):04X} is not allowed", field)
    return value


def _at_most(value: Any, limit: int, field: str, setting: str) -> None:
    if value is not None and value > limit:
        raise bad_request(f"{value} is more than the {limit} allowed here (setting {setting})", field, "over_limit")


def check_job_limits(settings: Settings, hypes: dict[str, Any]) -> None:
    """The per-job limits on resolved hypes."""
    size = len(json.dumps(hypes))
    if size > settings.max_hypes_kb * 1024:
        raise bad_request(f"the hypes take {math.ceil(size / 1024)} KiB, more than the {settings.max_hypes_kb} KiB "
                          "allowed (setting CAUCHY_MAX_HYPES_KB)", "hypes", "over_limit")
    _at_most(hypes["data"]["workers"], settings.cores_per_job, "hypes.data.workers", "CAUCHY_JOB_CORES: a job's cores")
    for split in ("train", "val", "test"):
        _at_most(hypes[split]["batch_size"], settings.max_batch_size, f"hypes.{split}.batch_size",
                 "CAUCHY_MAX_BATCH_SIZE")
    solver = hypes["solver"]
    _at_most(solver["max_epoch"], settings.max_epoch, "hypes.solver.max_epoch", "CAUCHY_MAX_EPOCH")
    _at_most(solver["max_iters"], settings.max_iters, "hypes.solver.max_iters", "CAUCHY_MAX_ITERS")
    _at_most(solver["checkpoint"]["keep"], settings.max_checkpoint_keep, "hypes.solver.checkpoint.keep",
             "CAUCHY_MAX_CHECKPOINT_KEEP")


class UserLimits:
    """The per-user and overall counters of one service (in memory: one process serves the API)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.submissions = RateLimiter(max(1, settings.submit_rate_per_min), 60.0)
        self._viewers = threading.Lock()
        self.waiters = threading.BoundedSemaphore(max(1, settings.legacy_waiters))  # legacy requests waiting on a job
        self._viewer_users: dict[int, str] = {}  # who started the viewer of an ended job

    def admit_submission(self, user: str) -> None:
        """Before a job is stored: the user's queue and submission rate."""
        with self.store.session() as session:
            queued = session.scalar(select(func.count()).select_from(Job).where(Job.user == user, Job.state == QUEUED))
        if queued >= self.settings.max_queued_per_user:
            raise too_many(f"{user} already has {queued} queued jobs, the most allowed (setting "
                          "CAUCHY_MAX_QUEUED_PER_USER); wait for some to start or cancel them", "user")
        wait = self.submissions.hit(user)
        if wait:
            raise too_many(f"{user} submitted {self.settings.submit_rate_per_min} jobs in the last minute, the most "
                          f"allowed (setting CAUCHY_SUBMIT_RATE_PER_MIN); retry in {math.ceil(wait)} s", "user",
                          retry_after=wait)

    @contextmanager
    def viewer_slot(self, user: str, job: Job | JobRow, viewers: Viewers) -> Iterator[None]:
        """Around starting a job's viewer: refused when the job has ended and ``user`` or everyone already
        has as many viewers of ended jobs open as allowed; one start at a time, so two requests cannot
        both take the last slot. A job still running has its viewer anyway."""
        with self._viewers:
            live = viewers.get(job.id)
            if job.state not in ENDED or (live is not None and live.proc.alive()):
                yield
                return
            ended = [job_id for job_id, viewer in viewers.items()
                     if viewer.until is not None and viewer.proc.alive()]
            if len(ended) >= self.settings.max_viewers:
                raise too_many(f"{len(ended)} viewers of ended jobs are open, the most allowed (setting "
                               "CAUCHY_MAX_VIEWERS); retry when one closes", retry_after=60)
            mine = sum(1 for job_id in ended if self._viewer_users.get(job_id) == user)
            if mine >= self.settings.max_viewers_per_user:
                raise too_many(f"{user} has {mine} viewers of ended jobs open, the most allowed (setting "
                               "CAUCHY_MAX_VIEWERS_PER_USER); close one (DELETE /api/v1/jobs/<id>/visdom)",
                               retry_after=60)
            yield
            self._viewer_users[job.id] = user


def user_limits() -> UserLimits:
    return current_app.extensions[LIMITS_KEY]
