"""The REST API's answers to good and bad requests, over a real waitress."""
from __future__ import annotations

import json
import re

import pytest

from services.api.openapi import DOCUMENT

DIGITS = "cls/image_classifier_smallcnn_digits.json"


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()["error"]


def test_submit_by_hypes_name_with_overrides_resolves_and_queues(settings, service_factory):
    service = service_factory(settings.replace(run_jobs=False))
    ada = service.as_user("ada", max_priority=5)
    response = ada.call("POST", "/api/v1/jobs",
                        json={"hypes": DIGITS, "overrides": {"solver.lr.base_lr": 0.01}, "priority": 5})
    job = response.json()
    assert response.status_code == 201 and response.headers["Location"].endswith(f"/api/v1/jobs/{job['id']}")
    assert job["state"] == "queued" and job["queue_position"] == 1 and job["user"] == "ada"
    assert job["hypes_name"] == DIGITS and job["name"] == "image_classifier_smallcnn_digits"
    assert job["hypes"]["solver"]["lr"]["base_lr"] == 0.01 and job["hypes"]["train"]["shuffle"] is True
    assert job["overrides"] == ["solver.lr.base_lr=0.01"]


@pytest.mark.parametrize("body, status, field, message", [
    ({"hypes": {"task": "cls", "bogus": 1}}, 400, "hypes.bogus", "bogus: unknown key"),
    ({"hypes": DIGITS, "overrides": ["solver.lr.base_lr=\"fast\""]}, 400, "hypes.solver.lr.base_lr",
     'solver.lr.base_lr: expected a number > 0, got "fast"'),
    ({"hypes": DIGITS, "overrides": "solver.lr.base_lr=1"}, 400, "overrides", "key.path=value"),
    ({"hypes": "cls/nope"}, 400, "hypes", "no hypes file 'cls/nope'"),
    ({"hypes": "../../pyproject.toml"}, 400, "hypes", "no hypes file"),
    ({"hypes": 3}, 400, "hypes", "expected a hypes object"),
    ({}, 400, "hypes", "expected a hypes object"),
    ({"hypes": DIGITS, "phase": "dance"}, 400, "phase", "expected one of train, test, finetune"),
    ({"hypes": DIGITS, "priority": "urgent"}, 400, "priority", "expected one of low, normal, high or an integer, got 'urgent'"),
    ({"hypes": DIGITS, "resources": {"time_limit_s": -1}}, 400, "resources.time_limit_s", "expected a number of seconds"),
    ({"hypes": DIGITS, "resources": {"cpu_slots": 99}}, 400, "resources.cpu_slots", "asked for 99 CPU slots"),
    ({"hypes": DIGITS, "resources": {"processes": 3}}, 400, "resources.processes", "asked for 3 processes"),
    ({"hypes": DIGITS, "resources": {"processes": 2, "cpu_slots": 1}}, 400, "resources.processes",
     "2 processes need as many CPU slots"),
    ({"hypes": DIGITS, "resources": {"processes": 0}}, 400, "resources.processes", "expected an integer from 1"),
    ({"hypes": DIGITS, "resources": {"nodes": 2}}, 400, "resources.nodes",
     "asked for 2 nodes; this service has 1 machine for jobs (a job spans machines with the ray executor"),
    ({"hypes": DIGITS, "resources": {"nodes": 0}}, 400, "resources.nodes", "expected an integer from 1"),
    ({"hypes": DIGITS, "priority": True}, 400, "priority", "expected an integer"),
    ({"hypes": DIGITS, "resources": {"gpus": -1}}, 400, "resources.gpus", "expected an integer from 0"),
    ({"hypes": DIGITS, "resources": {"gpus": 1}}, 400, "resources.gpus", "asked for 1 GPUs; this host has 0"),
    ({"hypes": DIGITS, "resources": {"cpus": 1}}, 400, "resources", 'expected {"gpus": N, "cpu_slots": N'),
    ({"hypes": DIGITS, "name": ""}, 400, "name", "expected a string of 1 to 200 characters"),
    ({"hypes": DIGITS, "colour": "red"}, 400, "colour", "unknown field 'colour'"),
    ({"hypes": DIGITS, "phase": "test", "from_job": 999}, 400, "from_job", "no job 999"),
    ({"hypes": DIGITS, "phase": "train", "from_job": 1}, 400, "from_job", "from_job is for the test phase"),
    ([1, 2], 400, None, "the request body must be a JSON object"),
])
def test_bad_submissions_are_400_naming_the_field_and_queue_nothing(service, body, status, field, message):
    err = error_of(service.call("POST", "/api/v1/jobs", json=body), status)
    assert err["field"] == field and message in err["message"]
    assert service.call("GET", "/api/v1/jobs").json()["total"] == 0


def test_body_that_is_not_json_or_too_large(settings, service_factory):
    service = service_factory(settings.replace(max_request_bytes=10_000, run_jobs=False))
    err = error_of(service.call("POST", "/api/v1/jobs", data="hypes=x"), 400)
    assert err["code"] == "invalid_body" and "JSON" in err["message"]
    big = {"hypes": DIGITS, "name": "x" * 20_000}
    err = error_of(service.call("POST", "/api/v1/jobs", data=json.dumps(big),
                                headers={"Content-Type": "application/json"}), 413)
    assert err["code"] == "request_entity_too_large"


def test_unknown_jobs_routes_and_methods(service):
    assert error_of(service.call("GET", "/api/v1/jobs/424242"), 404)["message"] == "no job 424242"
    for path in ("stop", "resume"):
        assert error_of(service.call("POST", f"/api/v1/jobs/424242/{path}"), 404)["code"] == "not_found"
    for path in ("logs", "metrics", "artifacts"):
        assert error_of(service.call("GET", f"/api/v1/jobs/424242/{path}"), 404)["code"] == "not_found"
    assert error_of(service.call("GET", "/api/v1/nothing"), 404)["code"] == "not_found"
    assert error_of(service.call("DELETE", "/api/v1/jobs"), 405)["code"] == "method_not_allowed"


def test_bad_queries(service, fake_hypes):
    job = service.submit(fake_hypes("ok"))
    err = error_of(service.call("GET", "/api/v1/jobs", params={"state": "sleeping"}), 400)
    assert err["field"] == "state" and "unknown state 'sleeping'" in err["message"]
    assert error_of(service.call("GET", "/api/v1/jobs", params={"limit": "ten"}), 400)["field"] == "limit"
    assert error_of(service.call("GET", "/api/v1/jobs", params={"limit": 0}), 400)["field"] == "limit"
    err = error_of(service.call("GET", f"/api/v1/jobs/{job['id']}/logs", params={"offset": -5}), 400)
    assert err["field"] == "offset"
    assert error_of(service.call("GET", f"/api/v1/jobs/{job['id']}/logs", params={"stream": "x"}), 400)["field"] == "stream"
    assert error_of(service.call("GET", f"/api/v1/jobs/{job['id']}/metrics", params={"since": "a"}), 400)["field"] == "since"


def test_stop_or_resume_in_the_wrong_state_is_409(service, fake_hypes):
    job = service.wait_ended(service.submit(fake_hypes("ok"))["id"])
    err = error_of(service.call("POST", f"/api/v1/jobs/{job['id']}/stop"), 409)
    assert err["message"] == f"job {job['id']} has already ended (succeeded)"
    failed = service.wait_ended(service.submit(fake_hypes("bad"))["id"])
    err = error_of(service.call("POST", f"/api/v1/jobs/{failed['id']}/resume"), 409)
    assert err["message"] == f"job {failed['id']} saved no checkpoint"


def test_listing_filters_and_pages(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(run_jobs=False))
    users = {name: service.as_user(name) for name in ("u1", "u2")}
    ids = [service.submit(fake_hypes("ok"), user="u1" if i % 2 else "u2")["id"] for i in range(7)]  # an admin may
    assert users["u1"].call("GET", "/api/v1/jobs").json()["total"] == 3  # a member sees their own
    service.call("POST", f"/api/v1/jobs/{ids[0]}/stop")
    page = service.call("GET", "/api/v1/jobs", params={"limit": 3, "offset": 2}).json()
    assert page["total"] == 7 and [j["id"] for j in page["jobs"]] == ids[::-1][2:5]
    assert "hypes" not in page["jobs"][0]
    queued = service.call("GET", "/api/v1/jobs", params={"state": "queued"}).json()
    assert queued["total"] == 6
    mine = service.call("GET", "/api/v1/jobs", params={"user": "u1", "state": "queued,stopped"}).json()
    assert mine["total"] == 3
    assert service.job(ids[3])["queue_position"] == 3


def test_openapi_document_matches_the_routes(service):
    doc = service.call("GET", "/api/v1/openapi.json").json()
    assert doc == json.loads(json.dumps(DOCUMENT)) and doc["openapi"].startswith("3.")
    routed = set()
    for rule in service.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
            routed |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert routed == documented
    for path, item in doc["paths"].items():
        for operation in item.values():
            assert operation["responses"], path
            assert {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"} == \
                set(re.findall(r"{(\w+)}", path))
