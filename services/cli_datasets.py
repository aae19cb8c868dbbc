"""``cauchy dataset``: upload (resumable, with a progress bar), list, show, delete, and (admin) register.

    cauchy dataset upload PATH [--name N] [--task T] [--format F] [--visibility V] [--wait]
    cauchy dataset list | show NAME [--version N] | delete NAME [--version N]
    cauchy dataset register NAME PATH [--task T] [--format F] [--visibility V]

A folder is zipped on the fly (stored, sorted, fixed times: the same folder gives the same bytes, so an
upload of it can resume); an archive (.zip, .tar, .tar.gz) is sent as it is. Each upload's id is kept in
``$XDG_CACHE_HOME/cauchy/uploads.json`` under the service, the name and what was sent (the archive's
path, size and modification time; for a folder, those of every file in it, not their bytes): run the
same command again after an interruption and it asks the service how much arrived and sends the rest.
A dropped connection during a run is retried from the service's offset as well.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import requests

from services.text import printable
from services.user_files import read_map, user_file, write_map

CHUNK_MB = 32
RETRIES = 8
ENDED_STATES = ("ready", "invalid")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
NOT_USABLE = 3  # the exit code of `--wait` when the version ends invalid


def uploads_file() -> Path:
    return user_file("XDG_CACHE_HOME", ".cache", "uploads.json")


def remembered() -> dict[str, str]:
    return read_map(uploads_file())


def remember(key: str, upload_id: str | None) -> None:
    uploads = remembered()
    if upload_id is None:
        uploads.pop(key, None)
    else:
        uploads[key] = upload_id
    write_map(uploads_file(), uploads)


def zip_folder(folder: Path, out: IO[bytes]) -> None:
    """The folder's files, stored (images are compressed already), in sorted order with fixed times."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), ZIP_TIME)
            info.external_attr = 0o644 << 16
            with open(path, "rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                while block := src.read(1 << 20):
                    dst.write(block)


@contextmanager
def archive_of(path: Path) -> Iterator[Path]:
    """``path`` itself when it is a file, else a temporary zip of the folder (removed afterwards)."""
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise SystemExit(f"error: {path} is neither a folder nor an archive")
    with tempfile.TemporaryDirectory(prefix="cauchy-upload-") as tmp:
        archive = Path(tmp) / f"{path.name}.zip"
        print(f"zipping {path} ...", file=sys.stderr)
        with open(archive, "wb") as out:
            zip_folder(path, out)
        yield archive


class Progress:
    """One line on stderr: bar, percent, megabytes and rate (this run's)."""

    def __init__(self, total: int, start: int, stream: IO[str] | None = None) -> None:
        self.total, self.start, self.stream, self.began = total, start, stream or sys.stderr, time.monotonic()

    def show(self, done: int) -> None:
        share = done / self.total if self.total else 1.0
        rate = (done - self.start) / 2**20 / max(time.monotonic() - self.began, 1e-6)
        bar = "#" * int(share * 30)
        self.stream.write(f"\r[{bar:30}] {share:6.1%} {done / 2**20:9.1f}/{self.total / 2**20:.1f} MB {rate:7.1f} MB/s")
        self.stream.flush()

    def end(self) -> None:
        self.stream.write("\n")


def source_key(source: Path) -> str:
    """What identifies the bytes sent from ``source`` without reading them: path, size and modification time
    of the archive, or of every file of a folder (zipped the same way, they give the same archive)."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink())
    digest = hashlib.sha256(str(source.resolve()).encode("utf-8", "surrogateescape"))
    for path in files:
        info = path.stat()
        digest.update(f"\0{path.relative_to(source) if path != source else ''}\0{info.st_size}\0{info.st_mtime_ns}"
                      .encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def upload(client: Any, path: Path, name: str, fields: dict[str, Any], chunk: int = CHUNK_MB * 2**20,
           progress: bool = True, source: Path | None = None) -> dict[str, Any]:
    """Send ``path`` (an archive, made from ``source`` when that is a folder) as a new version of ``name``,
    resuming an upload of the same source that an earlier run left unfinished; returns the version
    (unpacking)."""
    size = path.stat().st_size
    key = f"{client.url}|{name}|{source_key(source or path)}"
    upload_id = remembered().get(key)
    state = None
    if upload_id:
        response = client.http.get(f"{client.base}/datasets/uploads/{upload_id}", timeout=60)
        state = response.json() if response.status_code == 200 else None
        if state is not None:
            print(f"resuming upload {upload_id} at {state['offset']} of {size} bytes", file=sys.stderr)
    if state is None:
        state = client.call("POST", "/datasets/uploads", json={"name": name, "size": size, **fields})
        upload_id = state["id"]
        remember(key, upload_id)
    bar = Progress(size, state["offset"]) if progress else None
    offset = send(client, path, upload_id, state["offset"], size, chunk, bar)
    if bar:
        bar.end()
    version = client.call("POST", f"/datasets/uploads/{upload_id}/finish")
    remember(key, None)
    assert offset == size
    return version


def send(client: Any, path: Path, upload_id: str, offset: int, size: int, chunk: int, bar: Progress | None) -> int:
    """PUT the rest of ``path`` from ``offset``; after a dropped connection, ask the service where to go on."""
    url = f"{client.base}/datasets/uploads/{upload_id}"
    failures = 0
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            block = fh.read(min(chunk, size - offset))
            headers = {"Content-Range": f"bytes {offset}-{offset + len(block) - 1}/{size}",
                       "Content-Type": "application/octet-stream"}
            try:
                response = client.http.put(url, data=block, headers=headers, timeout=300)
            except requests.RequestException as exc:
                failures += 1
                if failures > RETRIES:
                    raise SystemExit(f"error: the upload stopped at {offset} bytes ({exc}); run the same command "
                                     "again to resume") from None
                time.sleep(min(2 ** failures, 30))
                offset = client.call("GET", f"/datasets/uploads/{upload_id}")["offset"]
                continue
            if response.status_code == 409:
                offset = client.call("GET", f"/datasets/uploads/{upload_id}")["offset"]
                continue
            if response.status_code >= 400:
                raise SystemExit(f"error: {printable(response.json()['error']['message'])}")
            failures = 0
            offset = response.json()["offset"]
            if bar:
                bar.show(offset)
    return offset


def find_dataset(client: Any, name: str) -> dict[str, Any]:
    for dataset in client.call("GET", "/datasets")["datasets"]:
        if dataset["name"] == name or str(dataset["id"]) == name:
            return dataset
    raise SystemExit(f"error: no dataset {name!r} you may read")


def wait_ended(client: Any, version: dict[str, Any], poll_s: float = 1.0) -> dict[str, Any]:
    path = f"/datasets/{version['dataset_id']}/versions/{version['version']}"
    while version["state"] not in ENDED_STATES:
        time.sleep(poll_s)
        version = client.call("GET", path)
    return version


def describe(version: dict[str, Any]) -> str:
    what = f"{version['ref']} {version['state']}"
    if version.get("task"):
        what += f" ({version['task']}, {version.get('format')})"
    if version.get("reason"):
        what += f": {printable(version['reason'])}"
    return what


def described_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {key: value for key, value in (("task", args.task), ("format", args.format),
                                          ("visibility", args.visibility)) if value}


def cmd_dataset(args: argparse.Namespace, client: Any) -> int:
    if args.action == "upload":
        path = Path(args.target)
        name = args.name or path.name.split(".")[0]
        with archive_of(path) as archive:
            version = upload(client, archive, name, described_fields(args), args.chunk_mb * 2**20, source=path)
    elif args.action == "register":
        version = client.call("POST", "/datasets/register", json={"name": args.target, "path": args.path,
                                                                   **described_fields(args)})
    if args.action in ("upload", "register"):
        version = wait_ended(client, version) if args.wait else version
        print(describe(version))
        return NOT_USABLE if version["state"] == "invalid" else 0
    if args.action == "list":
        print(f"{'ID':>5}  {'NAME':24} {'OWNER':12} {'VISIBILITY':16} VERSIONS")
        for dataset in client.call("GET", "/datasets")["datasets"]:
            versions = ", ".join(f"{v['version']}:{v['state']}" for v in dataset["versions"])
            print(f"{dataset['id']:>5}  {printable(dataset['name'])[:24]:24} {printable(dataset['owner'])[:12]:12} "
                  f"{dataset['visibility'][:16]:16} {versions}")
        return 0
    dataset = find_dataset(client, args.target)
    if args.action == "show":
        path = f"/datasets/{dataset['id']}" + (f"/versions/{args.version}" if args.version else "")
        print(json.dumps(client.call("GET", path), indent=2))
        return 0
    path = f"/datasets/{dataset['id']}" + (f"/versions/{args.version}" if args.version else "")
    client.call("DELETE", path)
    print(f"deleted {dataset['name']}" + (f"@{args.version}" if args.version else ""))
    return 0


def add_parser(sub: Any) -> None:
    dataset = sub.add_parser("dataset", help="datasets: upload PATH, list, show NAME, delete NAME, register NAME PATH")
    dataset.add_argument("action", choices=("upload", "list", "show", "delete", "register"))
    dataset.add_argument("target", nargs="?", help="upload: a folder or an archive; show, delete, register: the name")
    dataset.add_argument("path", nargs="?", help="register: a folder under CAUCHY_DATA_ROOTS on the server")
    dataset.add_argument("--name", help="upload: the dataset's name (default: the file or folder name)")
    dataset.add_argument("--task", help="cls, det, seg or pose (else recognised)")
    dataset.add_argument("--format", help="the reader's format name (else recognised)")
    dataset.add_argument("--visibility", help="private (default), public or group:<name>")
    dataset.add_argument("--version", type=int, help="show, delete: one version")
    dataset.add_argument("--wait", action="store_true", help="upload, register: wait until ready or invalid")
    dataset.add_argument("--chunk-mb", type=int, default=CHUNK_MB, help="upload: bytes per request")
