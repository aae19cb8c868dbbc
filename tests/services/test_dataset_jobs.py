"""A job naming a stored dataset reads the split names its inspection found, the same through the API and
the CLI (``services.datasets.job_data``): an image folder set split into ``training/`` and ``validation/``
trains on the one and validates on the other; a split the hypes give wins, one the dataset lacks is a 400.
The inspection is ``fake_inspect.py``; one service for the module."""
from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_service import FAKE_TASK, LiveService, make_hypes, port_range

from services import cli, cli_datasets
from services.cli import Client
from services.config import Settings
from services.datasets.job_data import split_choice

FAKE_INSPECT = str(Path(__file__).with_name("fake_inspect.py"))
ROOMS = {"training/cat/1.png": b"cat-1" * 50, "training/dog/1.png": b"dog-1" * 50,
         "validation/cat/2.png": b"cat-2" * 50, "validation/dog/2.png": b"dog-2" * 50}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """A service holding the ready dataset ``rooms`` (splits ``training`` and ``validation``)."""
    home = tmp_path_factory.mktemp("dataset-jobs")
    service = LiveService(Settings(home=home / "home", visdom_ports=port_range(60), cpu_slots=2, gpus=(),
                                   task_command=(sys.executable, FAKE_TASK), stop_grace_s=3.0, poll_interval_s=0.1,
                                   threads=8, component_check=(),
                                   dataset_inspect_command=(sys.executable, FAKE_INSPECT)))
    try:
        with zipfile.ZipFile(home / "rooms.zip", "w") as archive:
            for name, data in ROOMS.items():
                archive.writestr(name, data)
        api = Client(service.url, service.token)
        version = cli_datasets.wait_ended(api, cli_datasets.upload(api, home / "rooms.zip", "rooms", {},
                                                                   chunk=64 * 1024, progress=False), poll_s=0.1)
        assert version["state"] == "ready", version["reason"]
        yield service
    finally:
        service.close()


def job_hypes(**data: Any) -> dict[str, Any]:
    return {**make_hypes("ok", 1), "data": {"dataset": "rooms", **data}}


def splits_of(job: dict[str, Any]) -> tuple[str, str, str]:
    data = job["hypes"]["data"]
    return data["train_split"], data["val_split"], data["test_split"]


def test_the_split_names_follow_the_training_validation_and_test_prefixes() -> None:
    assert split_choice(["training", "validation"]) == {
        "train_split": "training", "val_split": "validation", "test_split": "validation"}
    assert split_choice(["test", "train", "val"]) == {"train_split": "train", "val_split": "val", "test_split": "test"}
    assert split_choice(["all"]) == {"train_split": "all", "val_split": "all", "test_split": "all"}
    assert split_choice(["a", "b"]) == {"train_split": "a", "val_split": "b", "test_split": "b"}
    assert split_choice([]) == {}


def test_a_job_through_the_api_reads_the_datasets_splits_unless_the_hypes_name_one(live: LiveService) -> None:
    job = live.submit(job_hypes())
    assert splits_of(job) == ("training", "validation", "validation")
    assert (job["hypes"]["data"]["format"], job["dataset"]["ref"]) == ("image_folder", "rooms@1")
    given = live.submit(job_hypes(val_split="training"))  # the hypes' own split wins
    assert splits_of(given) == ("training", "training", "validation")
    missing = live.call("POST", "/api/v1/jobs", json={"hypes": job_hypes(test_split="test")})
    error = missing.json()["error"]
    assert (missing.status_code, error["code"], error["field"]) == (400, "unknown_split", "hypes.data.test_split")
    assert "'test'" in error["message"] and "training, validation" in error["message"]
    overridden = live.call("POST", "/api/v1/jobs", json={"hypes": job_hypes(), "overrides": ["data.train_split=train"]})
    assert overridden.status_code == 400 and overridden.json()["error"]["field"] == "hypes.data.train_split"


def test_a_job_through_the_cli_reads_the_datasets_splits(live: LiveService, tmp_path: Path, capsys) -> None:
    hypes = tmp_path / "rooms.json"
    hypes.write_text(json.dumps(make_hypes("ok", 1)), encoding="utf-8")
    common = ["--url", live.url, "--token", live.token, "submit", str(hypes), "--unset", "data.data_dir",
              "--unset", "data.format", "--set", "data.dataset=rooms"]
    assert cli.main(common) == 0
    job_id = int(capsys.readouterr().out.split()[1])
    assert splits_of(live.job(job_id)) == ("training", "validation", "validation")
    with pytest.raises(SystemExit) as refused:
        cli.main([*common, "--set", "data.val_split=val"])
    assert "no split 'val'" in str(refused.value) and "[hypes.data.val_split]" in str(refused.value)
