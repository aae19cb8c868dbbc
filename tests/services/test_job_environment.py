"""A job's processes get a scrubbed environment and umask 077; the service's files are 0700/0600."""
from __future__ import annotations

import stat
from pathlib import Path

from cauchy.fetch import POLICY_ENV
from services.jobs.environment import PASSED, PASSED_PREFIXES, scrubbed_environment

SECRETS = {"CAUCHY_DATABASE_URL": "postgresql://cauchy:hunter2@db/cauchy", "CAUCHY_ADMIN_PASSWORD": "hunter2",
           "GITHUB_TOKEN": "ghp_secret", "AWS_SECRET_ACCESS_KEY": "secret", "PYTHONPATH": "/somewhere/else",
           "SOME_OTHER_SETTING": "x"}


def environ_of(pid: int) -> dict[str, str]:
    """The environment the process really started with (not what the service meant to give it)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if item)


def umask_of(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Umask:"))
    return int(line.split()[1], 8)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_task_and_visdom_see_only_the_allow_list_and_run_with_umask_077(monkeypatch, settings, service_factory,
                                                                        fake_hypes):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    service = service_factory(settings)
    job = service.wait(service.submit(fake_hypes("run"))["id"], lambda j: {"task", "visdom"} <= {
        p["role"] for p in j["processes"]})
    by_role = {p["role"]: p["pid"] for p in job["processes"]}
    for role in ("launcher", "task", "visdom"):
        env = environ_of(by_role[role])
        assert not set(SECRETS) & set(env), role
        assert all(key in PASSED or key.startswith(PASSED_PREFIXES) or key in (
            "PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES", "CAUCHY_HOME", POLICY_ENV) for key in env), (role, sorted(env))
        assert env["LC_ALL"] == "C.UTF-8" and env["OMP_NUM_THREADS"] == "2" and env["PATH"], role
        assert umask_of(by_role[role]) == 0o077, role
    assert POLICY_ENV in environ_of(by_role["task"])  # what it may fetch, handed over by the service
    task_env = environ_of(by_role["task"])
    assert task_env["CUDA_VISIBLE_DEVICES"] == "" and task_env["CAUCHY_HOME"] == str(settings.home)
    assert task_env["OMP_WAIT_POLICY"] == "PASSIVE"  # idle OpenMP threads sleep: jobs share the CPUs
    service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    assert service.wait_ended(job["id"])["state"] == "stopped"


def test_an_operators_openmp_wait_policy_wins():
    assert scrubbed_environment({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
    assert scrubbed_environment({})["OMP_WAIT_POLICY"] == "PASSIVE"


def test_home_database_and_job_files_are_private(settings, service_factory, fake_hypes):
    settings.home.mkdir(parents=True, mode=0o755)  # an existing, world-readable home is tightened
    service = service_factory(settings)
    job = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    assert job["state"] == "succeeded"
    home, directory = settings.home, Path(job["job_dir"])
    assert mode(home) == mode(home / "jobs") == mode(directory) == 0o700
    database = [home / name for name in ("cauchy.db", "cauchy.db-wal", "cauchy.db-shm")]
    assert all(path.exists() for path in database)
    written = [*database, *(directory / name for name in ("hypes.json", "stdout.log", "stderr.log", "visdom.log",
                                                           "metrics.jsonl", "exit.json", "checkpoints/latest.pth"))]
    assert {str(path): oct(mode(path)) for path in written} == {str(path): "0o600" for path in written}
    assert mode(directory / "checkpoints") == 0o700  # made by the task under umask 077


def test_an_existing_database_is_tightened(settings, service_factory):
    settings.home.mkdir(parents=True)
    for name in ("cauchy.db", "cauchy.db-wal"):
        (settings.home / name).touch(mode=0o644)
    service_factory(settings.replace(run_jobs=False))
    assert mode(settings.home / "cauchy.db") == mode(settings.home / "cauchy.db-wal") == 0o600
