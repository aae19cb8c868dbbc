"""What a job directory takes on disk, as the quota counts it."""
from __future__ import annotations

import os

from services.jobs.files import disk_usage


def test_disk_usage_counts_blocks_once_per_file(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints/latest.pth").write_bytes(os.urandom(2**20))
    os.link(tmp_path / "checkpoints/latest.pth", tmp_path / "checkpoints/best.pth")  # one file, two names
    with open(tmp_path / "sparse.bin", "wb") as fh:  # 1 GiB apparent, nothing written
        fh.truncate(2**30)
    used = disk_usage(tmp_path)
    assert 2**20 <= used < 2**20 + 64 * 1024
    assert disk_usage(tmp_path / "missing") == 0
