"""Jobs run as real processes (the stand-in task and a real Visdom) under a real waitress."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from live_service import wait_for
from sqlalchemy import update

from services.jobs.store import QUEUED, Job
from services.visdom_server import is_visdom_up

# The queue, the port allocation and a restart on PostgreSQL too (SQLite is the default).
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for init (orphaned workers are reaped by it, at its pace)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_job_runs_to_success_with_visdom_logs_and_metrics(service, fake_hypes):
    job = service.submit(fake_hypes("ok", iters=3), name="three steps")
    assert job["state"] == "queued" and job["name"] == "three steps"
    done = service.wait_ended(job["id"])
    assert done["state"] == "succeeded", done
    assert done["exit_code"] == 0 and done["reason"] == "finished"
    assert done["last_checkpoint"].endswith("checkpoints/latest.pth")
    events = service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()
    assert [e["name"] for e in events["events"]][:2] == ["max_iters", "loss"]
    later = service.call("GET", f"/api/v1/jobs/{job['id']}/metrics", params={"since": events["next"]}).json()
    assert later["events"] == [] and later["next"] == events["next"]
    out = service.call("GET", f"/api/v1/jobs/{job['id']}/logs").json()
    assert "fake task ok phase=train" in out["text"] and f"viz_port={done['visdom']['port']}" in out["text"]
    assert "gpus=''" in out["text"]  # a CPU job sees no GPU
    rest = service.call("GET", f"/api/v1/jobs/{job['id']}/logs", params={"offset": out["next_offset"]}).json()
    assert rest["text"] == ""
    # The viewer outlives the job for a while, under its base URL.
    assert done["visdom"]["up"] and is_visdom_up(done["visdom"]["port"], f"/visdom/{job['id']}")
    page = requests.get(done["visdom"]["direct_url"], timeout=5)
    assert page.status_code == 200 and "visdom" in page.text.lower()


def test_artifacts_list_and_download(service, fake_hypes):
    job = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    listing = service.call("GET", f"/api/v1/jobs/{job['id']}/artifacts").json()["artifacts"]
    paths = {item["path"] for item in listing}
    assert {"checkpoints/latest.pth", "hypes.json", "metrics.jsonl", "stdout.log"} <= paths
    assert not any(path.startswith("visdom/") for path in paths)
    item = next(item for item in listing if item["path"] == "checkpoints/latest.pth")
    download = service.call("GET", item["url"].replace("", "", 1))
    assert download.status_code == 200 and download.content and "attachment" in download.headers["Content-Disposition"]
    assert service.call("GET", f"/api/v1/jobs/{job['id']}/artifacts/../../cauchy.db").status_code == 404


def test_crash_and_bad_input_give_the_reason(service, fake_hypes):
    crash = service.submit(fake_hypes("crash"))
    bad = service.submit(fake_hypes("bad"))
    crash, bad = service.wait_ended(crash["id"]), service.wait_ended(bad["id"])
    assert crash["state"] == "failed" and crash["exit_code"] == 1
    assert "RuntimeError: CUDA out of memory (pretend)" in crash["reason"]
    assert bad["state"] == "failed" and bad["exit_code"] == 2
    assert "error: data.data_dir: no such directory" in bad["reason"]


@both_databases
def test_stop_saves_a_checkpoint_and_resume_continues_from_it(service, fake_hypes):
    job = service.submit(fake_hypes("run"))
    service.wait_metrics(job["id"])
    running = service.wait(job["id"], lambda j: j["visdom"]["up"])  # it starts beside the task
    assert running["state"] == "running"
    roles = {p["role"] for p in running["processes"]}
    assert {"launcher", "task", "visdom"} <= roles
    assert all(p["rss_mb"] > 0 for p in running["processes"])
    assert service.call("POST", f"/api/v1/jobs/{job['id']}/stop").status_code == 202
    stopped = service.wait_ended(job["id"])
    assert stopped["state"] == "stopped" and stopped["exit_code"] == 3, stopped
    assert stopped["last_checkpoint"] and os.path.isfile(stopped["last_checkpoint"])
    assert not any(alive(p["pid"]) for p in running["processes"] if p["role"] != "visdom")
    again = service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    assert again.status_code == 409 and "already ended (stopped)" in again.json()["error"]["message"]
    resumed = service.call("POST", f"/api/v1/jobs/{job['id']}/resume").json()
    assert resumed["from_job"] == job["id"] and resumed["resume_from"] == stopped["last_checkpoint"]
    log = service.wait(resumed["id"], lambda j: "resume=" in service.call(
        "GET", f"/api/v1/jobs/{resumed['id']}/logs").json()["text"])
    text = service.call("GET", f"/api/v1/jobs/{log['id']}/logs").json()["text"]
    assert f"resume={stopped['last_checkpoint']}" in text
    service.call("POST", f"/api/v1/jobs/{resumed['id']}/stop")
    service.wait_ended(resumed["id"])


def test_stop_kills_the_group_after_the_grace_period(service, fake_hypes):
    job = service.wait_metrics(service.submit(fake_hypes("stubborn"))["id"])
    started = time.monotonic()
    service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    ended = service.wait_ended(job["id"])
    assert ended["state"] == "stopped" and "grace period" in ended["reason"]
    assert time.monotonic() - started >= service.settings.stop_grace_s - 0.5
    assert not any(alive(p["pid"]) for p in job["processes"] if p["role"] != "visdom")


def test_kill_9_of_the_task_is_a_failure_with_the_signal(service, fake_hypes):
    job = service.wait_metrics(service.submit(fake_hypes("run"))["id"])
    task = next(p for p in job["processes"] if p["role"] == "task")
    os.kill(task["pid"], signal.SIGKILL)
    ended = service.wait_ended(job["id"])
    assert ended["state"] == "failed" and ended["exit_signal"] == signal.SIGKILL
    assert "SIGKILL" in ended["reason"]


def test_stop_a_queued_job_cancels_it(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(cpu_slots=1))
    first = service.submit(fake_hypes("run"))
    second = service.submit(fake_hypes("ok"))
    service.wait_metrics(first["id"])
    assert service.job(second["id"])["queue_position"] == 1
    service.call("POST", f"/api/v1/jobs/{second['id']}/stop")
    assert service.job(second["id"])["state"] == "stopped"
    service.call("POST", f"/api/v1/jobs/{first['id']}/stop")
    service.wait_ended(first["id"])


@both_databases
def test_cpu_slots_priority_and_fair_share(settings, service_factory, fake_hypes):
    """One slot: a blocker runs (not preemptible); then the high-priority job, then the user who holds less
    (fair share), then the other in order; every queued job says where it stands and why."""
    service = service_factory(settings.replace(cpu_slots=1, visdom_linger_s=0))
    for name in ("alice", "bob", "carol"):
        service.as_user(name)  # the admin submits for them
    blocker = service.submit(fake_hypes("run"), user="alice", preemptible=False)
    service.wait_metrics(blocker["id"])
    alice = [service.submit(fake_hypes("ok", 1), user="alice")["id"] for _ in range(3)]
    bob = service.submit(fake_hypes("ok", 1), user="bob")["id"]
    urgent = service.submit(fake_hypes("ok", 1), user="carol", priority="high")["id"]
    considered = lambda job: job["queue"]["reason"] != "not yet considered by the scheduler"  # noqa: E731
    queue = {i: service.wait(i, considered)["queue"] for i in (urgent, bob, *alice)}
    assert [queue[i]["position"] for i in (urgent, bob, *alice)] == [1, 2, 3, 4, 5]
    assert {queue[i]["reason"] for i in queue} == {"needs 1 CPU slot, 0 free"}
    service.call("POST", f"/api/v1/jobs/{blocker['id']}/stop")
    ended = [service.wait_ended(i) for i in (*alice, bob, urgent)]
    order = [job["id"] for job in sorted(ended, key=lambda job: job["started_at"])]
    assert order[0] == urgent
    # Alice held the slot, so Bob, who used less, goes before her; then Alice in order.
    assert order[1:] == [bob, *alice]
    for job in ended:
        assert job["state"] == "succeeded"


def test_memory_limit_kills_the_job_with_the_reason(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(job_memory_limit_mb=200))
    job = service.submit(fake_hypes("hog"))
    ended = service.wait_ended(job["id"])
    assert ended["state"] == "failed" and ended["reason"].startswith("killed for memory"), ended


def test_viewer_restarts_on_demand_from_the_saved_env(service, fake_hypes):
    job = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    port = job["visdom"]["port"]
    assert service.call("DELETE", f"/api/v1/jobs/{job['id']}/visdom").status_code == 200
    assert not service.job(job["id"])["visdom"]["up"] and not is_visdom_up(port, f"/visdom/{job['id']}")
    charts = service.call("GET", f"/api/v1/jobs/{job['id']}/charts", allow_redirects=False)
    assert charts.status_code == 302 and charts.headers["Location"].endswith(f"/visdom/{job['id']}/")
    viewer = service.job(job["id"])["visdom"]
    assert viewer["up"] and is_visdom_up(viewer["port"], f"/visdom/{job['id']}")


def test_viewer_is_shut_after_the_linger_time_and_its_port_freed(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(visdom_linger_s=0.5))
    free_before = service.call("GET", "/api/v1/health").json()["free_ports"]
    job = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    service.wait(job["id"], lambda j: j["visdom"]["port"] is None, timeout=10)
    assert service.call("GET", "/api/v1/health").json()["free_ports"] == free_before


@both_databases
def test_hundred_concurrent_submissions_none_lost_and_no_port_given_twice(settings, service_factory, fake_hypes,
                                                                         ports):
    six_ports = ports(6)
    service = service_factory(settings.replace(cpu_slots=4, visdom_linger_s=0, visdom_ports=six_ports,
                                               submit_rate_per_min=1000, max_queued_per_user=1000))

    def submit(i: int) -> int:
        return service.submit(fake_hypes("ok", 1), name=f"burst {i}")["id"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(submit, range(100)))
    assert len(set(ids)) == 100
    assert service.call("GET", "/api/v1/jobs", params={"limit": 1}).json()["total"] == 100
    # Watch a dozen of them run through six ports, then cancel the rest.
    ports_seen: list[int] = []
    while service.call("GET", "/api/v1/jobs", params={"state": "succeeded", "limit": 1}).json()["total"] < 12:
        live = {job_id: viewer.port for job_id, viewer in list(service.supervisor.viewers.items())}
        assert len(set(live.values())) == len(live)
        ports_seen += live.values()
        time.sleep(0.02)
    for job_id in ids:
        service.call("POST", f"/api/v1/jobs/{job_id}/stop")
    ended = [service.wait_ended(job_id) for job_id in ids]
    assert {job["state"] for job in ended} <= {"succeeded", "stopped"}, [job["reason"] for job in ended]
    assert "succeeded" in {job["state"] for job in ended}
    assert set(ports_seen) <= set(range(six_ports[0], six_ports[1] + 1))


def test_a_test_job_evaluates_another_jobs_checkpoint(service, fake_hypes):
    trained = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    tested = service.submit(fake_hypes("ok"), phase="test", from_job=trained["id"])
    assert tested["from_job"] == trained["id"] and tested["resume_from"] == trained["last_checkpoint"]
    assert service.wait_ended(tested["id"])["state"] == "succeeded"
    log = service.call("GET", f"/api/v1/jobs/{tested['id']}/logs").json()["text"]
    assert "phase=test" in log and f"resume={trained['last_checkpoint']}" in log


def test_each_gpu_goes_to_one_job_at_a_time_through_cuda_visible_devices(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(gpus=("0", "1"), cpu_slots=1))
    jobs = [service.submit(fake_hypes("run"), resources={"gpus": 1})["id"] for _ in range(3)]
    first, second = (service.wait_metrics(job_id) for job_id in jobs[:2])
    assert {tuple(first["resources"]["assigned_gpus"]), tuple(second["resources"]["assigned_gpus"])} == {("0",), ("1",)}
    for job in (first, second):
        log = service.call("GET", f"/api/v1/jobs/{job['id']}/logs").json()["text"]
        assert f"gpus='{job['resources']['assigned_gpus'][0]}'" in log
    waiting = service.job(jobs[2])
    assert waiting["state"] == "queued" and waiting["queue_position"] == 1
    service.call("POST", f"/api/v1/jobs/{first['id']}/stop")
    third = service.wait_metrics(jobs[2])
    assert third["resources"]["assigned_gpus"] == first["resources"]["assigned_gpus"]
    for job_id in jobs[1:]:
        service.call("POST", f"/api/v1/jobs/{job_id}/stop")
        service.wait_ended(job_id)


@both_databases
def test_a_task_whose_pid_was_never_recorded_is_found_and_adopted(settings, service_factory, fake_hypes, caplog):
    """The service died between spawning a task and writing its pid: the next one still finds it (and
    its log line names the pid it found)."""
    caplog.set_level(logging.INFO, logger="services.jobs.supervisor")
    first = service_factory(settings)
    job = first.wait_metrics(first.submit(fake_hypes("run"))["id"])
    launcher = next(p["pid"] for p in job["processes"] if p["role"] == "launcher")
    first.close_keeping_jobs()
    first.app.extensions["cauchy"].store.update(job["id"], pid=None, pid_started=None)
    second = service_factory(settings)
    adopted = second.job(job["id"])
    assert adopted["state"] == "running" and launcher in {p["pid"] for p in adopted["processes"]}
    assert f"job {job['id']}: adopted (running, pid {launcher})" in caplog.text
    second.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    assert second.wait_ended(job["id"])["state"] == "stopped"


def test_the_scheduler_sees_the_whole_queue(settings, service_factory, fake_hypes):
    """1001 queued jobs of one user and one of another, at equal priority: the other's job starts next."""
    service = service_factory(settings.replace(cpu_slots=1, visdom_linger_s=0))
    for name in ("flood", "other"):
        service.as_user(name)  # the admin submits for them
    blocker = service.wait_metrics(service.submit(fake_hypes("run"), user="flood")["id"])
    store = service.app.extensions["cauchy"].store
    with store.session() as session:
        session.bulk_insert_mappings(Job, [
            {"name": f"flood {i}", "user": "flood", "phase": "train", "state": QUEUED, "priority": 0,
             "gpus_requested": 0, "hypes": fake_hypes("ok", 1), "overrides": [], "created_at": time.time()}
            for i in range(1001)])
    other = service.submit(fake_hypes("ok", 1), user="other")["id"]
    service.call("POST", f"/api/v1/jobs/{blocker['id']}/stop")
    started = service.wait(other, lambda job: job["state"] != "queued")
    flood_started = [job.started_at for job in store.list(states=["running", "succeeded"], user="flood")[0]
                     if job.id != blocker["id"]]
    assert all(at > started["started_at"] for at in flood_started)
    with store.session() as session:  # cancel the flood without 1001 requests
        session.execute(update(Job).where(Job.state == QUEUED).values(state="stopped"))


def test_default_limits_are_on():
    from services.config import Settings, load_settings

    defaults = load_settings(environ={"CAUCHY_GPUS": "none"})
    assert defaults.job_memory_limit_mb == Settings.job_memory_limit_mb == 8192
    assert defaults.job_wall_clock_limit_s > 0 and defaults.job_disk_quota_mb > 0
    chosen = load_settings(environ={"CAUCHY_JOB_WALL_CLOCK_LIMIT_S": "3600", "CAUCHY_JOB_DISK_QUOTA_MB": "100"})
    assert (chosen.job_wall_clock_limit_s, chosen.job_disk_quota_mb) == (3600.0, 100)


def test_wall_clock_limit_stops_the_job_with_a_checkpoint(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(job_wall_clock_limit_s=1.5))
    job = service.submit(fake_hypes("run"))
    ended = service.wait_ended(job["id"])
    assert ended["state"] == "stopped" and ended["exit_code"] == 3, ended
    assert ended["reason"] == "wall-clock limit of 1.5 s reached; stopped after saving a checkpoint"
    assert ended["last_checkpoint"] and ended["ended_at"] - ended["started_at"] >= 1.5


def test_disk_quota_stops_the_job_naming_the_quota(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(job_disk_quota_mb=5))
    job = service.submit(fake_hypes("fill"))
    ended = service.wait_ended(job["id"])
    assert ended["state"] == "stopped" and ended["exit_code"] == 3, ended
    assert ended["reason"].startswith("disk quota of 5 MB for the job directory exceeded (")
    assert ended["reason"].endswith("MB used); stopped after saving a checkpoint")
    assert ended["last_checkpoint"]


def test_a_slow_viewer_does_not_hold_up_the_scheduler(settings, service_factory, fake_hypes, monkeypatch):
    """The first job's Visdom hangs at its start: meanwhile the supervisor starts, watches and ends another job;
    once the first viewer is up, the first job is the same as any other."""
    from services.jobs import viewers

    known, release, slow_id = threading.Event(), threading.Event(), []
    real = viewers.start_visdom

    def the_first_job_hangs(port, base_url, *args, **kwargs):
        known.wait(60)
        if base_url == f"/visdom/{slow_id[0]}":
            release.wait(300)
        return real(port, base_url, *args, **kwargs)

    monkeypatch.setattr(viewers, "start_visdom", the_first_job_hangs)
    service = service_factory(settings)
    try:
        slow = service.submit(fake_hypes("run"))["id"]
        slow_id.append(slow)
        known.set()
        fast = service.submit(fake_hypes("ok", 3))["id"]
        assert service.wait_ended(fast)["state"] == "succeeded"
        assert service.job(slow)["state"] == "running" and service.supervisor.viewers.get(slow) is None
        release.set()
        wait_for(lambda: service.job(slow)["visdom"]["up"], 120, "the slow viewer")
        assert service.call("POST", f"/api/v1/jobs/{slow}/stop").status_code == 202
        assert service.wait_ended(slow)["state"] == "stopped"
    finally:
        release.set()  # a failed assertion leaves no thread waiting
