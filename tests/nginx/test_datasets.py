"""Datasets through nginx: uploads (whole, resumed after a cut connection, hostile), quota, versions, their
inspection files, registration, deletion while a job uses a version, and jobs naming ``data.dataset``.

The inspection is ``tests/services/fake_inspect.py`` (``fast_settings``; same arguments and files as the real
one)."""
from __future__ import annotations

import hashlib
import random
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dataset_layouts import make
from stack import REPO, Stack, fast_settings, make_hypes

from services import cli, cli_datasets
from services.cli import Client
from services.config import Settings

IMAGES = {"train/cat/1.png": b"cat-1" * 50, "train/cat/2.png": b"cat-2" * 50, "train/dog/1.png": b"dog-1" * 50}


@pytest.fixture
def door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where the CLI remembers unfinished uploads
    (tmp_path / "roots/voc").mkdir(parents=True)
    live = Stack(fast_settings(tmp_path / "home", dataset_quota_mb=8, dataset_chunk_mb=1,
                               data_roots=(REPO / "data", tmp_path / "roots")))
    yield live
    live.close()


def client(door: Stack, user: Any = None) -> Client:
    """The CLI's client of the front door, as ``user`` (default: the admin)."""
    return Client(door.url, (user or door.service).token)


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def wait_version(api: Client, version: dict[str, Any]) -> dict[str, Any]:
    return cli_datasets.wait_ended(api, version, poll_s=0.1)


def upload(door: Stack, api: Client, archive: Path, name: str, **fields: Any) -> dict[str, Any]:
    return wait_version(api, cli_datasets.upload(api, archive, name, fields, chunk=64 * 1024, progress=False))


def test_a_folder_uploads_to_a_ready_version_with_its_report(door, tmp_path):
    folder = tmp_path / "pets"
    for name, data in IMAGES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    api = client(door)
    with cli_datasets.archive_of(folder) as archive:
        version = upload(door, api, archive, "pets")
    assert version["state"] == "ready", version["reason"]
    assert (version["ref"], version["task"], version["format"], version["files"]) == ("pets@1", "cls", "image_folder", 3)
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {len(data)}  {name}\n" for name, data in sorted(IMAGES.items()))
    assert version["sha256"] == hashlib.sha256(manifest.encode()).hexdigest()
    base = f"/datasets/{version['dataset_id']}/versions/1"
    assert api.call("GET", base + "/report")["class_names"] == ["cat", "dog"]
    assert api.call("GET", base + "/stats")["images_per_split"] == {"train": 3}
    assert api.call("GET", base + "/progress")["phase"] == "done"
    assert api.call("GET", f"/datasets/{version['dataset_id']}/stats") == api.call("GET", base + "/stats")
    preview = api.call("GET", base + "/previews")["previews"][0]
    assert api.http.get(door.url + preview["url"]).content.startswith(b"\xff\xd8")
    again = upload(door, api, make_zip(tmp_path / "p.zip", IMAGES), "pets")  # a new version, the same content
    assert (again["version"], again["sha256"]) == (2, version["sha256"])
    listed = api.call("GET", "/datasets")["datasets"]
    assert [(d["name"], d["latest_ready"], len(d["versions"])) for d in listed] == [("pets", 2, 2)]


def cut_put(door: Stack, token: str, upload_id: str, offset: int, body: bytes, size: int) -> None:
    """A PUT that promises ``len(body)`` bytes, sends half of them and drops the connection."""
    head = (f"PUT /api/v1/datasets/uploads/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Range: bytes {offset}-{offset + len(body) - 1}/{size}\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    host, port = door.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)


def test_an_upload_resumes_after_a_cut_connection(door, tmp_path):
    archive = make_zip(tmp_path / "pets.zip", {**IMAGES, "train/dog/big.png": random.Random(1).randbytes(400_000)})
    data, size = archive.read_bytes(), archive.stat().st_size
    api = client(door)
    created = api.call("POST", "/datasets/uploads", json={"name": "pets", "size": size})
    url = f"/datasets/uploads/{created['id']}"
    first = 100_000
    put = api.http.put(door.url + "/api/v1" + url, data=data[:first],
                       headers={"Content-Range": f"bytes 0-{first - 1}/{size}"})
    assert put.status_code == 200 and put.json()["offset"] == first
    cut_put(door, door.service.token, created["id"], first, data[first:first + 200_000], size)
    status = api.http.head(door.url + "/api/v1" + url)
    assert status.headers["Upload-Offset"] == str(first)  # the cut chunk added nothing
    wrong = api.http.put(door.url + "/api/v1" + url, data=b"x", headers={"Content-Range": f"bytes 0-0/{size}"})
    assert wrong.status_code == 409 and str(first) in wrong.json()["error"]["message"]
    early = api.http.post(door.url + "/api/v1" + url + "/finish")
    assert early.status_code == 409
    # The CLI remembered nothing of this upload: teach it, as a run that was interrupted would have.
    cli_datasets.remember(f"{api.url}|pets|{cli_datasets.source_key(archive)}", created["id"])
    version = wait_version(api, cli_datasets.upload(api, archive, "pets", {}, chunk=50_000, progress=False))
    assert version["state"] == "ready" and version["version"] == 1 and version["files"] == 4


@pytest.mark.parametrize("entries,reason", [
    ({"train/cat/1.png": b"x", "../../escaped.txt": b"evil"}, "escapes the target"),
    ({"/tmp/absolute.txt": b"evil"}, "absolute path"),
    ({"train/cat/zeros.png": bytes(40 * 2**20)}, "unpacks to more than 8388608 bytes"),  # the quota (8 MiB) is the cap
    ({"pets/readme.txt": b"no train folder here"}, "layout not recognised"),
    ({"train/cat/1.png": b"x", "train/cat/broken.png": b"not an image"}, "broken.png"),
    ({"train/cat/crash.png": b"x"}, "inspection failed (exit code 1): Traceback"),
])
def test_hostile_or_unusable_archives_end_invalid_with_the_reason(door, tmp_path, entries, reason):
    api = client(door)
    version = upload(door, api, make_zip(tmp_path / "bad.zip", entries), "bad")
    assert version["state"] == "invalid" and reason in version["reason"], version
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/absolute.txt").exists()
    if "unpack" in reason or "escapes" in reason or "absolute" in reason:  # refused while unpacking: nothing kept
        assert not list((door.service.settings.datasets_dir / "bad").rglob("*.png"))


def test_symlinks_and_truncated_archives_end_invalid(door, tmp_path):
    api = client(door)
    linked = tmp_path / "link.zip"
    with zipfile.ZipFile(linked, "w") as archive:
        info = zipfile.ZipInfo("train/cat/1.png")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    assert "symbolic link" in upload(door, api, linked, "linked")["reason"]
    whole = make_zip(tmp_path / "whole.zip", IMAGES).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[:-40])
    assert "truncated or corrupt" in upload(door, api, tmp_path / "cut.zip", "cut")["reason"]


def test_the_quota_refuses_an_upload_that_would_pass_it(door, tmp_path):
    api = client(door)
    refused = api.http.post(door.url + "/api/v1/datasets/uploads", json={"name": "huge", "size": 9 * 2**20})
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "over_quota"
    first = api.call("POST", "/datasets/uploads", json={"name": "a", "size": 5 * 2**20})
    second = api.http.post(door.url + "/api/v1/datasets/uploads", json={"name": "b", "size": 4 * 2**20})
    assert second.status_code == 413  # the unfinished upload counts
    assert api.http.delete(door.url + f"/api/v1/datasets/uploads/{first['id']}").status_code == 204
    assert api.http.post(door.url + "/api/v1/datasets/uploads", json={"name": "b", "size": 4 * 2**20}).status_code == 201


def test_a_chunk_over_the_route_limit_is_refused_by_nginx(door):
    api = client(door)
    created = api.call("POST", "/datasets/uploads", json={"name": "big", "size": 3 * 2**20})
    response = api.http.put(door.url + f"/api/v1/datasets/uploads/{created['id']}", data=bytes(2 * 2**20),
                            headers={"Content-Range": f"bytes 0-{2 * 2**20 - 1}/{3 * 2**20}"})
    assert response.status_code == 413
    assert api.call("GET", f"/datasets/uploads/{created['id']}")["offset"] == 0


def test_a_job_reads_a_ready_version_and_it_cannot_be_deleted_meanwhile(door, tmp_path):
    api = client(door)
    version = upload(door, api, make_zip(tmp_path / "pets.zip", IMAGES), "pets")
    hypes = make_hypes("run", 1000)
    del hypes["data"]["data_dir"]
    hypes["data"]["dataset"] = "pets"
    job = door.service.submit(hypes)
    assert job["dataset"] == {"ref": "pets@1", "sha256": version["sha256"]}
    assert job["hypes"]["data"]["dataset"] == "pets@1"
    assert Path(job["hypes"]["data"]["data_dir"]).joinpath("train/cat/1.png").read_bytes() == IMAGES["train/cat/1.png"]
    refused = api.http.delete(door.url + f"/api/v1/datasets/{version['dataset_id']}/versions/1")
    assert refused.status_code == 409 and f"job {job['id']}" in refused.json()["error"]["message"]
    assert api.http.delete(door.url + f"/api/v1/datasets/{version['dataset_id']}").status_code == 409
    door.service.wait_metrics(job["id"])  # running, its stop handler in place: stopping saves a checkpoint
    door.service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    door.service.wait_ended(job["id"])
    batch = door.service.call("POST", "/cauchy/test_batch", data={"job_id": job["id"], "dataset": "pets@1"}).json()
    assert batch["code"] == "100200", batch  # the legacy endpoint that took a folder takes a dataset
    predict = door.service.wait_ended(batch["content"]["job_id"])
    assert predict["dataset"] == job["dataset"]
    unknown = door.service.call("POST", "/cauchy/test_batch", data={"job_id": job["id"], "dataset": "nope"}).json()
    assert unknown["code"] == "100400" and unknown["content"].startswith("dataset:")
    resumed = door.service.call("POST", f"/api/v1/jobs/{job['id']}/resume").json()
    assert resumed["dataset"] == job["dataset"] and resumed["hypes"]["data"] == job["hypes"]["data"]
    door.service.call("POST", f"/api/v1/jobs/{resumed['id']}/stop")
    door.service.wait_ended(resumed["id"])
    assert api.http.delete(door.url + f"/api/v1/datasets/{version['dataset_id']}/versions/1").status_code == 204
    assert not Path(job["hypes"]["data"]["data_dir"]).exists()


def test_jobs_name_only_ready_datasets_they_may_read(door, tmp_path):
    api = client(door)
    upload(door, api, make_zip(tmp_path / "bad.zip", {"x.txt": b"x"}), "bad")
    good = upload(door, api, make_zip(tmp_path / "pets.zip", IMAGES), "pets")
    otto = door.service.as_user("otto")

    def submit(who: Any, ref: str, **data: Any) -> requests.Response:
        hypes = make_hypes("ok", 1)
        hypes["data"] = {"format": "image_folder", "dataset": ref, **data}
        return requests.post(door.url + "/api/v1/jobs", json={"hypes": hypes}, timeout=30,
                             headers={"Authorization": f"Bearer {who.token}"})

    for ref, code in (("bad", "dataset_not_ready"), ("pets@7", "unknown_dataset"), ("nope", "unknown_dataset")):
        refused = submit(door.service, ref)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == code, refused.text
    assert submit(otto, "pets").json()["error"]["code"] == "unknown_dataset"  # private to its owner
    both = submit(door.service, "pets", data_dir="data/digits")
    assert both.status_code == 400 and both.json()["error"]["field"] == "hypes.data.data_dir"
    store_path = make_hypes("ok", 1)
    store_path["data"]["data_dir"] = str(Path(door.service.settings.datasets_dir) / "pets/1/files")
    direct = requests.post(door.url + "/api/v1/jobs", json={"hypes": store_path}, timeout=30,
                           headers={"Authorization": f"Bearer {otto.token}"})
    assert direct.status_code == 400 and "data.dataset" in direct.json()["error"]["message"]
    assert otto.call("GET", f"/api/v1/datasets/{good['dataset_id']}").status_code == 404
    shared = api.call("PATCH", f"/datasets/{good['dataset_id']}", json={"visibility": "public"})
    assert shared["visibility"] == "public"
    assert submit(otto, "pets@1").status_code == 201
    assert otto.call("DELETE", f"/api/v1/datasets/{good['dataset_id']}").status_code == 403


def test_an_admin_registers_a_folder_under_the_data_roots_without_copying(door, tmp_path):
    root = tmp_path / "roots/voc"
    for name, data in IMAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    api = client(door)
    version = wait_version(api, api.call("POST", "/datasets/register", json={"name": "voc", "path": str(root)}))
    assert version["state"] == "ready" and version["source"] == "registered" and version["files"] == 3
    job = door.service.submit({**make_hypes("ok", 1), "data": {"format": "image_folder", "dataset": "voc"}})
    assert job["hypes"]["data"]["data_dir"] == str(root)
    outside = api.http.post(door.url + "/api/v1/datasets/register", json={"name": "etc", "path": "/etc"})
    assert outside.status_code == 400 and outside.json()["error"]["field"] == "path"
    member = door.service.as_user("mia")
    assert member.call("POST", "/api/v1/datasets/register", json={"name": "x", "path": str(root)}).status_code == 403
    door.service.wait_ended(job["id"])
    assert api.http.delete(door.url + f"/api/v1/datasets/{version['dataset_id']}").status_code == 204
    assert (root / "train/cat/1.png").exists()  # the registered folder itself stays


@pytest.mark.slow
def test_the_real_inspection_makes_uploads_ready_or_says_why_not(tmp_path, monkeypatch):
    """``cauchy.datasets.tools.inspect_dataset`` itself: a zipped COCO folder (wrapped in its folder) is a
    ready det dataset; an image folder with a broken image is invalid and the report names the file."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    live = Stack(fast_settings(tmp_path / "home", dataset_inspect_command=Settings().dataset_inspect_command))
    try:
        api = client(live)
        make("coco", str(tmp_path / "src/shapes"))
        with zipfile.ZipFile(tmp_path / "shapes.zip", "w") as archive:
            for path in sorted((tmp_path / "src").rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(tmp_path / "src").as_posix())
        version = upload(live, api, tmp_path / "shapes.zip", "shapes")
        assert (version["state"], version["task"], version["format"]) == ("ready", "det", "coco"), version["reason"]
        stats = api.call("GET", f"/datasets/{version['dataset_id']}/versions/1/stats")
        assert stats and api.call("GET", f"/datasets/{version['dataset_id']}/versions/1/previews")["previews"]
        make("image_folder", str(tmp_path / "pets"))
        (tmp_path / "pets/train/cat/0.png").write_bytes(b"not a png")
        with cli_datasets.archive_of(tmp_path / "pets") as archive:
            broken = upload(live, api, archive, "pets")
        assert broken["state"] == "invalid" and "0.png" in broken["reason"], broken["reason"]
        report = api.call("GET", f"/datasets/{broken['dataset_id']}/versions/1/report")
        assert not report["ok"] and any("train/cat/0.png" in p["file"] for p in report["problems"])
        job = make_hypes("ok", 1)
        job["data"] = {"format": "image_folder", "dataset": "pets"}
        refused = requests.post(live.url + "/api/v1/jobs", json={"hypes": job}, timeout=30,
                                headers={"Authorization": f"Bearer {live.service.token}"})
        assert refused.json()["error"]["code"] == "dataset_not_ready"
    finally:
        live.close()


def test_the_cli_uploads_a_folder_lists_shows_and_deletes(door, tmp_path, capsys):
    folder = tmp_path / "pets"
    for name, data in IMAGES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    common = ["--url", door.url, "--token", door.service.token, "dataset"]
    assert cli.main([*common, "upload", str(folder), "--wait", "--chunk-mb", "1"]) == 0
    out, err = capsys.readouterr()
    assert "pets@1 ready (cls, image_folder)" in out and "100.0%" in err  # the progress bar reached the end
    assert cli.main([*common, "list"]) == 0
    assert "1:ready" in capsys.readouterr().out
    assert cli.main([*common, "show", "pets", "--version", "1"]) == 0
    assert '"sha256"' in capsys.readouterr().out
    (folder / "train/cat/broken.png").write_bytes(b"not an image")
    assert cli.main([*common, "upload", str(folder), "--wait"]) == cli_datasets.NOT_USABLE
    assert "pets@2 invalid" in capsys.readouterr().out
    assert cli.main([*common, "delete", "pets"]) == 0
    assert client(door).call("GET", "/datasets")["datasets"] == []
