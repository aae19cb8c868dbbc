"""A restart of the service starts again the dataset versions it left half-way (unpacking or validating)."""
from __future__ import annotations

import io
import stat
import sys
import time
import zipfile
from pathlib import Path

from live_service import LiveService

from services.datasets.models import UNPACKING

FAKE_INSPECT = str(Path(__file__).with_name("fake_inspect.py"))


def test_a_version_left_unpacking_is_unpacked_after_a_restart(settings):
    settings = settings.replace(dataset_inspect_command=(sys.executable, FAKE_INSPECT))
    first = LiveService(settings)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("train/cat/1.png", b"cat")
    data = archive.getvalue()
    datasets = first.app.extensions["cauchy.datasets"]
    admin = first.accounts.caller(first.accounts.user("admin").id)
    upload, _ = datasets.create_upload(admin, "pets", len(data), "private", None, None)
    datasets.part(upload.id).write_bytes(data)
    found = datasets.finish(upload)  # as if the service went down before its worker ran
    assert found.version.state == UNPACKING
    first.close()
    second = LiveService(settings)
    try:
        deadline = time.monotonic() + 60
        while (version := second.call("GET", f"/api/v1/datasets/{found.dataset.id}/versions/1").json())["state"] in (
                "unpacking", "validating"):
            assert time.monotonic() < deadline, version
            time.sleep(0.1)
        assert version["state"] == "ready" and version["files"] == 1, version
        unpacked = Path(settings.datasets_dir / "pets/1/files/train/cat/1.png")
        assert stat.S_IMODE(unpacked.stat().st_mode) == 0o400  # a version's files are not to be changed
        assert not (settings.datasets_dir / "pets/1/archive").exists()
    finally:
        second.close()
