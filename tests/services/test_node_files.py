"""``/api/v1/jobs/<id>/node/files/<path>``, what a job on another node streams and uploads through, and the
node runner's mirror against it, without a Ray cluster: a running stand-in job is given a run record as the
Ray executor would write it, and its token opens its routes and no other job's."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.executors.jobtoken import job_token
from services.executors.node_run import TOKEN_HEADER, Link, Mirror
from services.jobs import files


@pytest.fixture
def running(settings, service_factory, fake_hypes):
    service = service_factory(settings)
    job = service.submit(fake_hypes("run"))
    service.wait(job["id"], lambda j: j["state"] == "running")
    files.write_json(files.job_dir(settings.jobs_dir, job["id"]) / files.RAY_RUN, {"submission_id": "cauchy-test-run"})
    yield service, job["id"], job_token(settings.home, "cauchy-test-run")
    service.call("POST", f"/api/v1/jobs/{job['id']}/stop")


def put(service, job_id: int, path: str, data: bytes, token: str, **query):
    return service.call("PUT", f"/api/v1/jobs/{job_id}/node/files/{path}", data=data, params=query,
                        headers={TOKEN_HEADER: token})


def test_appends_at_the_offset_and_renames_uploads_into_place(running):
    service, job_id, token = running
    directory = files.job_dir(service.settings.jobs_dir, job_id)  # stderr.log: the stand-in task writes stdout.log
    assert put(service, job_id, "stderr.log", b"one\n", token, offset=0).status_code == 200
    assert put(service, job_id, "stderr.log", b"two\n", token, offset=4).status_code == 200
    stale = put(service, job_id, "stderr.log", b"again\n", token, offset=2)
    assert stale.status_code == 409 and stale.json()["size"] == 8
    assert (directory / "stderr.log").read_bytes() == b"one\ntwo\n"
    assert put(service, job_id, "checkpoints/latest.pth", b"half", token, offset=0, done=0).status_code == 200
    assert not (directory / "checkpoints" / "latest.pth").exists()  # nothing half-written under the real name
    assert put(service, job_id, "checkpoints/latest.pth", b"-whole", token, offset=4, done=1).status_code == 200
    assert (directory / "checkpoints" / "latest.pth").read_bytes() == b"half-whole"
    reply = service.call("GET", f"/api/v1/jobs/{job_id}/node/files/checkpoints/latest.pth", headers={TOKEN_HEADER: token})
    assert reply.content == b"half-whole"


def test_refuses_other_tokens_and_paths_outside_the_job(running):
    service, job_id, token = running
    assert put(service, job_id, "stdout.log", b"x", "f" * 64, offset=0).status_code == 403
    assert put(service, job_id, "stdout.log", b"x", "", offset=0).status_code == 403
    assert put(service, job_id, "hypes.json", b"{}", token, offset=0).status_code == 400
    assert put(service, job_id, "../other/stdout.log", b"x", token, offset=0).status_code in (400, 404)
    assert put(service, job_id, "stdout.log", b"x", token, offset="x").status_code == 400


def test_the_mirror_sends_what_the_task_writes(running, tmp_path: Path):
    service, job_id, token = running
    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    (work / "metrics.jsonl").write_text('{"step": 1}\n')
    (work / "checkpoints" / "latest.pth").write_bytes(b"ckpt-1")
    (work / "checkpoints" / ".tmp-half").write_bytes(b"half-written")
    mirror = Mirror(Link(service.url, job_id, token), work)
    mirror.sync()
    with open(work / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 2}\n')
    (work / "metrics.jsonl.new").write_text('{"step": 1}\n')
    mirror.sync()
    directory = files.job_dir(service.settings.jobs_dir, job_id)
    assert (directory / "metrics.jsonl").read_text() == '{"step": 1}\n{"step": 2}\n'
    (work / "metrics.jsonl.new").replace(work / "metrics.jsonl")  # a resume rewrote it: sent whole again
    mirror.sync()
    assert (directory / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert (directory / "checkpoints" / "latest.pth").read_bytes() == b"ckpt-1"
    assert not (directory / "checkpoints" / ".tmp-half").exists()
