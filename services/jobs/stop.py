"""Stopping one job, for a user's stop request and for ``cauchy shutdown`` alike."""
from __future__ import annotations

import time
from typing import Any

from services.jobs.store import QUEUED, RUNNING, STOPPED, STOPPING, Store


def stop_job(store: Store, supervisor: Any, job_id: int) -> bool:
    """Queued: cancelled at once. Running: marked stopping (the supervisor sends SIGTERM, waits the grace
    period for the checkpoint, then kills the group). False when the job had already ended."""
    now = time.time()
    if store.transition(job_id, [QUEUED], state=STOPPED, ended_at=now, reason="cancelled before it started"):
        supervisor.endings.notify(job_id)
    elif not (store.transition(job_id, [RUNNING], state=STOPPING, stop_requested_at=now)
              or store.get(job_id).state == STOPPING):
        return False
    supervisor.wake()
    return True
