"""The legacy /cauchy/ endpoints answer old clients in their shape, on the same job machinery."""
from __future__ import annotations

import base64
import json

DIGITS = "cls/image_classifier_smallcnn_digits.json"


def legacy(service, endpoint: str, **data) -> dict:
    response = service.call("POST", f"/cauchy/{endpoint}", data=data)
    assert response.status_code == 200, response.text
    return response.json()


def test_train_check_stop_and_stop_visdom_like_the_php_site(service, fake_hypes):
    free = legacy(service, "free_port")
    first, last = service.settings.visdom_ports
    assert free["code"] == "100200" and first <= free["content"]["port"] <= last
    started = legacy(service, "train", hypes=json.dumps(fake_hypes("run")), gpus="0")
    assert started["code"] == "100200"
    pid = started["content"]["pid"]
    service.wait_metrics(pid)
    service.wait(pid, lambda job: legacy(service, "check_viz_started", pid=str(pid))["content"]["started"])
    viz = legacy(service, "check_viz_started", pid=str(pid))["content"]
    assert viz["url"] == f"/visdom/{pid}/" and viz["port"]
    refused = legacy(service, "stop_visdom", pid=str(pid))
    assert refused["code"] == "100409" and "still running" in refused["content"]
    assert legacy(service, "stop_training", pid=str(pid))["code"] == "100200"
    assert service.wait_ended(pid)["state"] == "stopped"
    assert legacy(service, "stop_visdom", job_id=str(pid))["code"] == "100200"
    assert legacy(service, "check_viz_started", pid=str(pid))["content"]["started"] is False


def test_test_single_and_batch_run_predict_jobs_on_a_trained_checkpoint(service, fake_hypes):
    trained = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    image = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
    single = legacy(service, "test_single", job_id=str(trained["id"]), image=f"data:image/png;base64,{image}")
    assert single["code"] == "100200", single
    assert single["content"]["prediction"]["label"] == 3
    predict_job = service.job(single["content"]["job_id"])
    assert predict_job["phase"] == "predict" and predict_job["resume_from"] == trained["last_checkpoint"]
    assert not list((service.settings.home / "inputs").iterdir())  # the image is deleted once the job ended
    images = service.settings.datasets_dir / "images"  # test_batch reads data roots only, like data.data_dir
    images.mkdir(parents=True)
    batch = legacy(service, "test_batch", job_id=str(trained["id"]), dir=str(images))
    assert batch["code"] == "100200" and service.wait_ended(batch["content"]["job_id"])["state"] == "succeeded"


def test_errors_keep_the_legacy_shape(service):
    bad = legacy(service, "train", hypes=json.dumps({"task": "cls", "bogus": 1}))
    assert bad["code"] == "100400" and bad["content"].startswith("bogus: unknown key")
    assert legacy(service, "train", hypes="{not json")["code"] == "100400"
    assert legacy(service, "train", hypes=DIGITS, overrides="[oops")["code"] == "100400"
    assert legacy(service, "stop_training", pid="77")["code"] == "100404"
    assert legacy(service, "stop_training")["code"] == "100400"
    assert legacy(service, "check_viz_started", pid="x")["code"] == "100400"
    assert legacy(service, "test_single", job_id="1", image="%%%")["code"] == "100400"
    assert legacy(service, "test_batch", job_id="1", dir="/nonexistent")["code"] == "100404"  # the job first
    assert service.call("GET", "/api/v1/jobs").json()["total"] == 0
