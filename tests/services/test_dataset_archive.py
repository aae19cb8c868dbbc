"""Unpacking hostile archives (services/datasets/archive.py) and the content hash, in the worker's own code."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from services.datasets.archive import ArchiveRefused, Limits, unpack
from services.datasets.content import ContentError, summarise, walk

ROOMY = Limits(max_bytes=100 * 2**20, max_files=1000, max_ratio=200)
FILES = {"train/a/1.png": b"one", "train/b/2.png": b"two" * 100}


def make_zip(path: Path, entries: dict[str, bytes], level: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", level) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_info(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def written(target: Path) -> int:
    return sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) if target.exists() else 0


def test_zip_and_tar_gz_of_the_same_files_unpack_to_the_same_hash(tmp_path):
    from_zip = unpack(make_zip(tmp_path / "a.zip", FILES), tmp_path / "z", ROOMY)
    from_tar = unpack(make_tar(tmp_path / "a.tgz", [file_info(n, d) for n, d in FILES.items()]), tmp_path / "t", ROOMY)
    assert summarise(from_zip) == summarise(from_tar)
    assert (tmp_path / "z/train/b/2.png").read_bytes() == FILES["train/b/2.png"]
    assert summarise(walk(tmp_path / "z", 10, 2**20)) == summarise(from_zip)  # a registered folder hashes alike
    assert summarise(from_zip).files == 2


@pytest.mark.parametrize("name", ["../evil.txt", "train/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt", "a\\..\\b"])
def test_entries_escaping_the_target_are_refused(tmp_path, name):
    with pytest.raises(ArchiveRefused, match="escapes|absolute|backslash"):
        unpack(make_zip(tmp_path / "slip.zip", {"ok.txt": b"x", name: b"evil"}), tmp_path / "out", ROOMY)
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind,what", [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"),
                                       (tarfile.CHRTYPE, "not a file"), (tarfile.FIFOTYPE, "not a file")])
def test_links_devices_and_pipes_in_a_tar_are_refused(tmp_path, kind, what):
    archive = make_tar(tmp_path / "x.tar", [file_info("ok.txt", b"x"), special("link", kind, "/etc/passwd")], "w")
    with pytest.raises(ArchiveRefused, match=what):
        unpack(archive, tmp_path / "out", ROOMY)
    assert not (tmp_path / "out/link").exists()


def test_a_symlink_in_a_zip_is_refused(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("train/link")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveRefused, match="symbolic link"):
        unpack(path, tmp_path / "out", ROOMY)


def test_a_zip_bomb_stops_at_the_cap_having_written_at_most_it(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(64 * 2**20)})
    assert bomb.stat().st_size < 2**20
    cap = Limits(max_bytes=5 * 2**20, max_files=10, max_ratio=10_000)
    with pytest.raises(ArchiveRefused, match="more than 5242880 bytes"):
        unpack(bomb, tmp_path / "out", cap)
    assert written(tmp_path / "out") <= cap.max_bytes
    with pytest.raises(ArchiveRefused, match="expands more than 10 times"):
        unpack(bomb, tmp_path / "out2", Limits(max_bytes=2**30, max_files=10, max_ratio=10))
    assert written(tmp_path / "out2") <= 11 * 2**20


def test_too_many_files_and_a_truncated_archive_are_refused(tmp_path):
    many = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(5)})
    with pytest.raises(ArchiveRefused, match="more than 3 files"):
        unpack(many, tmp_path / "out", Limits(2**20, 3, 200))
    whole = make_tar(tmp_path / "whole.tgz", [file_info("big.bin", bytes(range(256)) * 4096)])
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ArchiveRefused, match="truncated or corrupt"):
        unpack(cut, tmp_path / "out2", ROOMY)
    zipped = make_zip(tmp_path / "z.zip", FILES).read_bytes()
    (tmp_path / "cut.zip").write_bytes(zipped[: len(zipped) - 30])
    with pytest.raises(ArchiveRefused, match="truncated or corrupt"):
        unpack(tmp_path / "cut.zip", tmp_path / "out3", ROOMY)


def test_not_an_archive_and_duplicates_are_refused(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"hello, not a zip at all" * 40)
    with pytest.raises(ArchiveRefused, match="not a zip, tar or tar.gz"):
        unpack(tmp_path / "x.zip", tmp_path / "out", ROOMY)
    twice = make_tar(tmp_path / "twice.tgz", [file_info("a.txt", b"1"), file_info("a.txt", b"2")])
    with pytest.raises(ArchiveRefused, match="twice"):
        unpack(twice, tmp_path / "out2", ROOMY)


def test_a_registered_folder_with_a_link_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.txt").write_text("a")
    (tmp_path / "data/link").symlink_to("/etc/passwd")
    with pytest.raises(ContentError, match="link"):
        walk(tmp_path / "data", 10, 2**20)


def test_the_worker_unpacks_hashes_and_writes_the_manifest(tmp_path):
    archive = make_zip(tmp_path / "w.zip", {f"mine/{name}": data for name, data in FILES.items()})
    done = subprocess.run([sys.executable, "-m", "services.datasets.worker", "unpack", str(archive), str(tmp_path / "t"),
                           "--manifest", str(tmp_path / "manifest.txt"), "--max-bytes", "1000000", "--max-files", "10",
                           "--max-ratio", "100"], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["files"] == 2
    lines = (tmp_path / "manifest.txt").read_text().splitlines()
    assert [line.split("  ")[2] for line in lines] == [f"mine/{name}" for name in sorted(FILES)]
    refused = subprocess.run([sys.executable, "-m", "services.datasets.worker", "unpack", str(archive),
                              str(tmp_path / "t2"), "--manifest", str(tmp_path / "m2"), "--max-bytes", "10",
                              "--max-files", "10", "--max-ratio", "100"], capture_output=True, text=True)
    assert refused.returncode == 1 and "more than 10 bytes" in refused.stderr
