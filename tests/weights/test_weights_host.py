"""The weights host: publishing (store and API), the manifest, names in network.pretrained, and the
first weights made on a fresh machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from cauchy.manifest import read_manifest
from cauchy.weights import WeightsError, fetch_weights, resolve_name, sha256_file
from services.weights_store import WeightsStoreError, publish

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/nginx"))
from stack import fast_settings, make_hypes, service_fixtures  # noqa: E402

HYPES = {"task": "cls", "network": {"model_name": "small_cnn"}, "train": {"data_transformer": {"input_size": [8, 8]}}}


def checkpoint(path: Path, classes: int = 3) -> Path:
    """A Cauchy-style checkpoint: model state, optimizer state, class names."""
    torch.save({"model": {"fc.weight": torch.randn(classes, 16)}, "optimizer": {"state": {}},
                "class_names": [f"c{i}" for i in range(classes)]}, path)
    return path


def test_publish_writes_weights_only_and_the_manifest(tmp_path):
    directory = tmp_path / "weights"
    entry = publish(directory, "first", checkpoint(tmp_path / "best.pth"), hypes=HYPES, metrics={"top1": 0.9},
                    source_job=7)
    assert entry["num_classes"] == 3 and entry["class_names"] == ["c0", "c1", "c2"]
    assert (entry["task"], entry["architecture"], entry["input_size"], entry["source_job"]) == ("cls", "small_cnn", [8, 8], 7)
    path = directory / entry["file"]
    assert entry["sha256"] == sha256_file(str(path)) and entry["size"] == path.stat().st_size
    assert set(torch.load(path, weights_only=True)) == {"fc.weight"}  # no optimizer state published
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert read_manifest(directory) == [entry]
    with pytest.raises(WeightsStoreError, match="already exist"):
        publish(directory, "first", tmp_path / "best.pth", hypes=HYPES, metrics={}, source_job=None)
    with pytest.raises(WeightsStoreError, match="letters, digits"):
        publish(directory, "../up", tmp_path / "best.pth", hypes=HYPES, metrics={}, source_job=None)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(WeightsStoreError, match="cannot export"):
        publish(directory, "junk", tmp_path / "junk.pth", hypes=HYPES, metrics={}, source_job=None)
    assert sorted(os.listdir(directory)) == [".lock", "first.pth", "manifest.json"]  # nothing half-written


def test_concurrent_publishes_all_land(tmp_path):
    directory = tmp_path / "weights"
    source = checkpoint(tmp_path / "best.pth")
    threads = [threading.Thread(target=publish, args=(directory, f"w{i}", source),
                                kwargs={"hypes": HYPES, "metrics": {}, "source_job": i}) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(entry["name"] for entry in read_manifest(directory)) == ["w0", "w1", "w2"]


def test_a_name_resolves_through_the_manifest(tmp_path, monkeypatch):
    entry = publish(tmp_path / "weights", "named", checkpoint(tmp_path / "best.pth"), hypes=HYPES, metrics={},
                    source_job=None)
    assert resolve_name("named", str(tmp_path / "weights")) == (str(tmp_path / "weights/named.pth"), entry["sha256"])
    monkeypatch.setenv("CAUCHY_HOME", str(tmp_path))
    assert fetch_weights("named") == str(tmp_path / "weights/named.pth")
    with pytest.raises(WeightsError, match=r"no entry of that name .*\(named\)"):
        fetch_weights("other")
    (tmp_path / "weights/named.pth").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        fetch_weights("named")


def test_publish_api_and_the_services_own_weights_route(tmp_path):
    service = service_fixtures.LiveService(fast_settings(tmp_path / "home"))
    try:
        running = service.submit(make_hypes("run"))
        service.wait(running["id"], lambda j: j["state"] == "running")
        refused = service.call("POST", f"/api/v1/jobs/{running['id']}/publish", json={"name": "x"})
        assert refused.status_code == 409 and "has ended" in refused.json()["error"]["message"]
        done = service.submit(make_hypes("ok", iters=2))
        service.wait_ended(done["id"])
        checkpoint(service.supervisor.job_dir(done["id"]) / "checkpoints/latest.pth")  # the stand-in wrote JSON
        bad = service.call("POST", f"/api/v1/jobs/{done['id']}/publish", json={"name": "no spaces"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "name"
        made = service.call("POST", f"/api/v1/jobs/{done['id']}/publish", json={"name": "from_job"})
        assert made.status_code == 201, made.text
        entry = made.json()
        assert entry["source_job"] == done["id"] and entry["url"] == "/weights/from_job.pth"
        again = service.call("POST", f"/api/v1/jobs/{done['id']}/publish", json={"name": "from_job"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "exists"
        assert [w["name"] for w in service.call("GET", "/api/v1/weights").json()["weights"]] == ["from_job"]
        part = service.call("GET", entry["url"], headers={"Range": "bytes=10-"})
        assert part.status_code == 206 and len(part.content) == entry["size"] - 10
        assert service.call("GET", "/weights/").json()["weights"][0]["sha256"] == entry["sha256"]
        service.call("POST", f"/api/v1/jobs/{running['id']}/stop")
        service.wait_ended(running["id"])
    finally:
        service.close()


@pytest.mark.slow
def test_first_weights_on_a_fresh_machine_then_finetune_by_name(tmp_path, digits_dir):
    make_first = REPO / "scripts/weights/make_first.py"
    home = tmp_path / "home"
    cmd = [sys.executable, str(make_first), "--home", str(home), "--data", digits_dir, "--epochs", "1"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (entry,) = read_manifest(home / "weights")
    assert entry["name"] == "small_cnn_digits" and entry["num_classes"] == 10 and entry["metrics"]["top1"] > 0.5
    again = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
    assert "small_cnn_digits" in again.stdout and read_manifest(home / "weights") == [entry]  # not made twice
    run = subprocess.run(
        [sys.executable, "run_tasks.py", "--hypes", "hypes/cls/image_classifier_smallcnn_digits.json", "--phase",
         "finetune", "--tmp_dir", str(tmp_path / "ft"), "--set", f"data.data_dir={digits_dir}",
         "--set", "network.pretrained=small_cnn_digits", "--set", "solver.max_epoch=null", "--set", "solver.max_iters=2",
         "--set", "solver.lr.metric=iters", "--set", "solver.test_interval=2", "--set", "logging.progress_bar=false"],
        cwd=REPO, env={**os.environ, "CAUCHY_HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "loaded 26/26 tensors from small_cnn_digits" in run.stdout + run.stderr
    assert json.loads((tmp_path / "ft/hypes.json").read_text())["network"]["pretrained"] == "small_cnn_digits"


def test_publish_refuses_a_checkpoint_with_code_in_it(tmp_path, malicious_pickle):
    directory = tmp_path / "weights"
    marker = malicious_pickle(tmp_path / "evil.pth")
    with pytest.raises(WeightsStoreError, match=r"cannot export evil\.pth: error: checkpoint .* does not load as "
                                                r"weights only"):
        publish(directory, "evil", tmp_path / "evil.pth", hypes=HYPES, metrics={}, source_job=None)
    assert not marker.exists()
    assert os.listdir(directory) == []  # no weights file, no manifest entry
