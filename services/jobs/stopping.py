"""Stopping a job, as the jobs layer does it for a user, a limit or the scheduler: a queued job is cancelled
at once; a running one is marked ``stopping``, and the supervisor sends SIGTERM, waits the grace period for
the checkpoint, then kills the group. A preemption is a stop whose job goes back to the queue afterwards."""
from __future__ import annotations

import logging
import time

from services.jobs.endings import Endings
from services.jobs.store import QUEUED, RUNNING, STOPPED, STOPPING, Job, Store

log = logging.getLogger(__name__)


class AlreadyEnded(Exception):
    """The job had ended before the stop was asked for."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} has already ended ({job.state})")
        self.job = job


def request_stop(store: Store, endings: Endings, job_id: int) -> Job:
    """A user's stop: cancels a queued job, asks a running one to stop (a pending preemption becomes a plain
    stop: the job will not go back to the queue)."""
    now = time.time()
    if store.transition(job_id, [QUEUED], state=STOPPED, ended_at=now, reason="cancelled before it started"):
        log.info("job %d: queued -> stopped (cancelled)", job_id)
        endings.notify(job_id)
    elif store.transition(job_id, [RUNNING], state=STOPPING, stop_requested_at=now):
        log.info("job %d: running -> stopping (asked to stop)", job_id)
    elif not store.transition(job_id, [STOPPING], preempted_for=None, reason=None):
        raise AlreadyEnded(store.get(job_id))
    return store.get(job_id)


def stop_for(store: Store, job_id: int, reason: str, preempted_for: int | None = None) -> bool:
    """Stop a running job for the service's own reason (a limit, a preemption for job ``preempted_for``);
    the reason is kept until the job's end. False if it was no longer running."""
    stopped = store.transition(job_id, [RUNNING], state=STOPPING, stop_requested_at=time.time(), reason=reason,
                               preempted_for=preempted_for)
    if stopped:
        log.info("job %d: running -> stopping (%s)", job_id, reason)
    return stopped
