"""Resume is offered only when training has work left; a chain of resumes keeps one name; a resumed
job starts with the metrics of the job it continues, so its page shows the whole run."""
from __future__ import annotations


def metric_steps(service, job_id: int) -> list[int]:
    return [e["step"] for e in service.call("GET", f"/api/v1/jobs/{job_id}/metrics").json()["events"]]


def test_a_resumed_job_has_the_runs_history_and_one_name(service, fake_hypes):
    job = service.wait_metrics(service.submit(fake_hypes("run"), name="fault-lost")["id"])
    service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    stopped = service.wait_ended(job["id"])
    assert stopped["state"] == "stopped" and stopped["resumable"] is True
    before = metric_steps(service, job["id"])
    assert before
    resumed = service.call("POST", f"/api/v1/jobs/{job['id']}/resume").json()
    assert resumed["name"] == "fault-lost (resumed)"
    assert metric_steps(service, resumed["id"])[:len(before)] == before  # the history, before the task ran
    # Its metrics start with the history: wait for a step of its own (its task runs, its stop handler in place).
    service.wait(resumed["id"], lambda j: len(metric_steps(service, resumed["id"])) > len(before))
    service.call("POST", f"/api/v1/jobs/{resumed['id']}/stop")
    service.wait_ended(resumed["id"])
    again = service.call("POST", f"/api/v1/jobs/{resumed['id']}/resume").json()
    assert again["name"] == "fault-lost (resumed)" and again["from_job"] == resumed["id"]
    assert metric_steps(service, again["id"])[:len(before)] == before
    service.call("POST", f"/api/v1/jobs/{again['id']}/stop")
    service.wait_ended(again["id"])


def test_a_succeeded_job_offers_no_resume(service, fake_hypes):
    done = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    assert done["state"] == "succeeded" and done["resumable"] is False
    listed = service.call("GET", "/api/v1/jobs").json()["jobs"][0]
    assert listed["id"] == done["id"] and listed["resumable"] is False
    response = service.call("POST", f"/api/v1/jobs/{done['id']}/resume")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (f"job {done['id']} succeeded: its training is complete, "
                                                    "nothing is left to resume")
    assert service.call("GET", "/api/v1/jobs").json()["total"] == 1
