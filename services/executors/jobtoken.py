"""The per-run token a job on another node sends with its streams and uploads (``X-Cauchy-Job-Token``).

An HMAC of the run's Ray submission id under a key derived from the service's secret: nothing to store, it
is worthless once the run ends (a requeued job runs under a new submission id), and it opens only that job's
``/api/v1/jobs/<id>/node/files/`` routes.
"""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from services.auth.secrets import derive_key, server_secret


def job_token(home: Path, submission_id: str) -> str:
    key = derive_key(server_secret(home), "node job tokens")
    return hmac.new(key, submission_id.encode(), hashlib.sha256).hexdigest()


def token_matches(home: Path, submission_id: str, sent: str) -> bool:
    return hmac.compare_digest(job_token(home, submission_id).encode(), sent.encode())
