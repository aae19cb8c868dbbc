"""How an upload's chunk reaches its part file (services/datasets/store.py ``copy_body``): from a file in the
kernel, from memory in pieces, and in pieces again when the kernel cannot copy between the two files."""
from __future__ import annotations

import errno
import io
import os

import pytest

from services.datasets.store import copy_body

DATA = bytes(range(256)) * 5000


def spooled(tmp_path, data: bytes = DATA) -> io.BufferedRandom:
    """A body as waitress keeps one past 512 KiB: a temporary file, read from its start."""
    source = open(tmp_path / "body", "w+b")
    source.write(data)
    source.seek(0)
    return source


@pytest.mark.parametrize("kind", ["file", "memory", "other file system"])
def test_a_chunk_lands_at_its_offset_whatever_holds_it(tmp_path, monkeypatch, kind):
    if kind == "other file system":
        def cross_device(*_args):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        monkeypatch.setattr(os, "copy_file_range", cross_device)
    source = io.BytesIO(DATA) if kind == "memory" else spooled(tmp_path)
    with open(tmp_path / "part", "w+b") as out:
        out.write(b"head")
        assert copy_body(source, out, 4, len(DATA)) == len(DATA)
    assert (tmp_path / "part").read_bytes() == b"head" + DATA
    source.close()


def test_a_short_body_reports_how_much_it_held(tmp_path):
    with spooled(tmp_path, DATA[:1000]) as source, open(tmp_path / "part", "w+b") as out:
        assert copy_body(source, out, 0, 5000) == 1000
    assert copy_body(io.BytesIO(b"abc"), io.BytesIO(), 0, 10) == 3
