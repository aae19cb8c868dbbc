"""An unfinished upload that receives no chunk for ``dataset_upload_expiry_s`` is removed by the service's
sweep, and its quota comes back; one whose part file changed recently stays."""
from __future__ import annotations

import os
import time

from live_service import LiveService, wait_for

UPLOADS = "/api/v1/datasets/uploads"


def touch(path, when: float) -> None:
    """The part file's modification time: when its last chunk arrived."""
    os.utime(path, (when, when))


def test_an_abandoned_upload_expires_and_gives_its_quota_back(settings):
    live = LiveService(settings.replace(dataset_quota_mb=1, dataset_upload_expiry_s=5.0))
    try:
        datasets = live.app.extensions["cauchy.datasets"]
        abandoned = live.call("POST", UPLOADS, json={"name": "pets", "size": 800_000}).json()
        put = live.call("PUT", f"{UPLOADS}/{abandoned['id']}", data=b"x" * 1000,
                        headers={"Content-Range": "bytes 0-999/800000"})
        assert put.status_code == 200 and put.json()["offset"] == 1000
        touch(datasets.part(abandoned["id"]), time.time() + 3600)  # as if a chunk had just arrived, whenever
        kept = live.call("POST", UPLOADS, json={"name": "kept", "size": 100}).json()  # the sweep looks
        touch(datasets.part(kept["id"]), time.time() + 3600)
        refused = live.call("POST", UPLOADS, json={"name": "birds", "size": 800_000})
        assert refused.status_code == 413  # the unfinished upload counts against the quota until it expires
        touch(datasets.part(abandoned["id"]), time.time() - 6)  # its last chunk, longer ago than the expiry
        wait_for(lambda: live.call("GET", f"{UPLOADS}/{abandoned['id']}").status_code == 404, 30,
                 "the abandoned upload to expire")
        assert not datasets.part(abandoned["id"]).exists()
        assert live.call("GET", f"/api/v1/datasets/{abandoned['dataset_id']}").json()["versions"] == []
        assert live.call("POST", UPLOADS, json={"name": "birds", "size": 800_000}).status_code == 201
        assert live.call("GET", f"{UPLOADS}/{kept['id']}").json()["offset"] == 0  # a recent chunk: still there
    finally:
        live.close()
