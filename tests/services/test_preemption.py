"""Preemption, reasons and usage through the live service, with the stand-in task: a high job takes a low
job's CPU slot, the victim saves a checkpoint, goes back to the queue and resumes from it by itself; a
restart in the middle loses neither the job nor the usage history."""
from __future__ import annotations

import json
from pathlib import Path

from services.jobs.store import ENDED


def steps(service, job_id: int) -> list[int]:
    events = service.call("GET", f"/api/v1/jobs/{job_id}/metrics").json()["events"]
    return [e["step"] for e in events if e["name"] == "loss"]


def usage_of(service, user: str) -> dict:
    users = service.call("GET", "/api/v1/scheduler").json()["users"]
    return next(u for u in users if u["user"] == user)


def test_a_high_job_preempts_a_low_one_which_resumes_from_its_checkpoint(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(cpu_slots=2))
    service.as_user("alice")
    service.as_user("bob", max_priority=10)
    low = [service.submit(fake_hypes("ok", 120), user="alice", priority="low")["id"] for _ in range(2)]
    for job_id in low:
        service.wait_metrics(job_id)
    assert service.job(low[0])["priority_class"] == "low"
    high = service.submit(fake_hypes("ok", 3), user="bob", priority="high")["id"]
    assert service.wait_ended(high)["state"] == "succeeded"
    ended = [service.wait_ended(job_id) for job_id in low]
    assert [job["state"] for job in ended] == ["succeeded", "succeeded"]
    victim = next(job for job in ended if job["preemptions"])
    (record,) = victim["preemptions"]
    assert record["for_job"] == high and record["checkpoint"].endswith("checkpoints/latest.pth")
    assert record["how"] == "stopped after saving a checkpoint" and victim["resume_from"] == record["checkpoint"]
    # it resumed where it stopped: every step once, in order
    assert steps(service, victim["id"]) == list(range(1, 121))
    log = service.call("GET", f"/api/v1/jobs/{victim['id']}/logs").json()["text"]
    assert f"resume={record['checkpoint']}" in log
    other = next(job for job in ended if job is not victim)
    assert other["preemptions"] == [] and steps(service, other["id"]) == list(range(1, 121))
    usage = usage_of(service, "alice")
    assert usage["cpu_seconds"] > 0 and usage["gpu_seconds"] == 0 and usage["group"] == ""


def test_every_queued_job_says_why_it_waits_its_position_and_when_it_should_start(settings, service_factory,
                                                                                   fake_hypes):
    service = service_factory(settings.replace(cpu_slots=1))
    # it says it runs a million steps: by its measured pace it ends after its time limit, which counts
    blocker = service.submit(fake_hypes("run", 10**6), preemptible=False, resources={"time_limit_s": 60})
    started = service.wait_metrics(blocker["id"])["started_at"]
    first = service.submit(fake_hypes("ok", 1), resources={"time_limit_s": 30})["id"]
    second = service.submit(fake_hypes("ok", 1))["id"]
    waiting = service.wait(second, lambda job: job["queue"]["reason"] != "not yet considered by the scheduler")
    ahead = service.job(first)["queue"]
    assert ahead["position"] == 1 and ahead["reason"] == "needs 1 CPU slot, 0 free"
    assert abs(ahead["estimated_start"] - (started + 60)) < 2
    assert waiting["queue"]["position"] == 2 and waiting["queue_position"] == 2
    assert abs(waiting["queue"]["estimated_start"] - (started + 90)) < 2
    assert not service.job(blocker["id"])["preemptible"]
    for job_id in (second, first, blocker["id"]):
        service.call("POST", f"/api/v1/jobs/{job_id}/stop")
    service.wait_ended(blocker["id"])


def test_a_restart_during_a_preemption_loses_no_job_and_no_usage(settings, service_factory, fake_hypes):
    first = service_factory(settings.replace(cpu_slots=1))
    first.as_user("alice")
    first.as_user("bob", max_priority=10)
    victim = first.submit(fake_hypes("slow_ok", 100), user="alice", priority="low")["id"]
    first.wait_metrics(victim)
    high = first.submit(fake_hypes("ok", 2), user="bob", priority="high")["id"]
    first.wait(victim, lambda job: job["state"] == "stopping")  # saving its checkpoint takes 1.5 s
    before = usage_of(first, "alice")
    first.close_keeping_jobs()

    second = service_factory(settings.replace(cpu_slots=1))
    assert second.job(victim)["state"] in ("stopping", "queued", "running")
    assert usage_of(second, "alice")["cpu_seconds"] >= before["cpu_seconds"] * 0.999
    assert second.wait_ended(high)["state"] == "succeeded"
    done = second.wait_ended(victim)
    assert done["state"] == "succeeded" and len(done["preemptions"]) == 1
    assert done["preemptions"][0]["for_job"] == high
    assert steps(second, victim) == list(range(1, 101))
    checkpoint = json.loads(Path(done["last_checkpoint"]).read_text())
    assert checkpoint["resumed_from"] == done["preemptions"][0]["checkpoint"]
    jobs = second.call("GET", "/api/v1/jobs").json()
    assert jobs["total"] == 2 and {job["state"] for job in jobs["jobs"]} <= set(ENDED)
