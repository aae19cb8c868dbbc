"""An old torchcv hypes file submitted to the service as it is: translated at submission, the job
stores Cauchy's form and its page lists what was translated and ignored."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from cauchy import rundir

OLD = Path(__file__).parents[1] / "cauchy" / "legacy" / "hypes" / "cls_fc_vgg19_cifar10.json"


def test_a_torchcv_file_is_translated_at_submission_and_the_job_shows_the_report(settings, service_factory):
    service = service_factory(settings.replace(run_jobs=False))
    ada = service.as_user("ada")
    old = json.loads(OLD.read_text())
    response = ada.call("POST", "/api/v1/jobs", json={"hypes": old, "overrides": ["data.data_dir=data/digits", "data.workers=1"]})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["hypes"]["method"] == "image_classifier" and job["hypes"]["loss"]["loss_type"] == "ce"
    assert job["hypes"]["train"]["aug_trans"]["random_hflip"] == {"p": 0.5}
    report = job["hypes_upgrade"]
    assert {"key": "logging.rewrite", "kind": "ignored", "to": None,
            "note": "every run writes its own run directory"} in report["ignored"]
    assert any(c["key"] == "loss.loss_type" for c in report["translated"])
    assert (settings.home / "jobs" / str(job["id"]) / rundir.HYPES_UPGRADE).is_file()


def test_a_cauchy_file_has_no_translation_report(settings, service_factory):
    service = service_factory(settings.replace(run_jobs=False))
    job = service.as_user("ada").call("POST", "/api/v1/jobs", json={"hypes": "cls/image_classifier_smallcnn_digits"}).json()
    assert job["hypes_upgrade"] is None


def test_a_bad_key_left_in_a_torchcv_file_is_a_400_naming_it(settings, service_factory):
    service = service_factory(settings.replace(run_jobs=False))
    old = json.loads(OLD.read_text())
    old["solver"]["bogus_key"] = 1
    response = service.as_user("ada").call("POST", "/api/v1/jobs", json={"hypes": old})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "hypes.solver.bogus_key"


def test_the_submission_check_builds_components_and_names_every_bad_key(settings, service_factory):
    """What ``run_tasks.py --check`` refuses, the service refuses at submission, all problems in one 400."""
    service = service_factory(settings.replace(run_jobs=False, component_check=(sys.executable, "-m",
                                                                                  "cauchy.check_worker")))
    ada = service.as_user("ada")
    old = json.loads(OLD.read_text())
    old["loss"]["loss_type"] = "ce"  # torchcv's ce_reduction is then a wrong parameter of Cauchy's ce
    old["network"]["params"] = {"widht": 3}
    response = ada.http.post(f"{ada.url}/api/v1/jobs", json={"hypes": old, "overrides": ["data.workers=1",
                                                                                           "data.data_dir=data/digits"]},
                             timeout=600)  # the check process may still be importing torch on a busy machine
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "hypes.network.params.widht"
    assert error["message"].splitlines() == [
        "network.params.widht: not a parameter of model vgg19",
        "loss.params.ce_reduction: not a parameter of loss ce; its parameters: label_smoothing, weight"]
    assert ada.call("GET", "/api/v1/jobs").json()["total"] == 0
    good = ada.call("POST", "/api/v1/jobs", json={"hypes": json.loads(OLD.read_text()),
                                                  "overrides": ["data.workers=1", "data.data_dir=data/digits"]})
    assert good.status_code == 201, good.text
    checker = service.app.extensions["cauchy"].checker
    proc = checker._proc
    service.close()
    assert proc.poll() is not None  # the check process ends with the service
