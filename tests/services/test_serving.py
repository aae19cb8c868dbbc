"""Deployments end to end on a live service: published digits weights deployed on the CPU answer what
``run_tasks.py --phase predict`` writes for the same images, batch concurrent requests, refuse a bad image
by name, hold a CPU slot, answer the legacy ``test_single``, survive a restart of the service (adopted),
start again when killed, and end on DELETE. The batcher alone, without a server, below."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from live_service import FAKE_TASK, LiveService, make_hypes, port_range

from services.cli import main as cli_main
from services.config import Settings
from services.serving.batching import Batcher, Metrics, percentiles
from services.serving.models import BACKENDS
from services.weights_store import publish, weights_dir

REPO = Path(__file__).resolve().parents[2]
DIGITS_HYPES = REPO / "hypes/cls/image_classifier_smallcnn_digits.json"


def make_run(run_dir: Path, digits_dir: str) -> None:
    """A run directory with an (untrained) small CNN checkpoint, as training leaves one: no training needed."""
    import torch

    from cauchy.build import build_method
    from cauchy.hypes import load_hypes, resolve_hypes, save_hypes

    hypes = resolve_hypes(load_hypes(str(DIGITS_HYPES)), [f"data.data_dir={digits_dir}"])
    torch.manual_seed(1)
    method = build_method(hypes, 10)
    (run_dir / "checkpoints").mkdir(parents=True)
    save_hypes(hypes, str(run_dir / "hypes.json"))
    torch.save({"model": method.model.state_dict(), "class_names": list("0123456789"), "hypes": hypes, "metadata": {}},
               run_dir / "checkpoints/best.pth")


@pytest.fixture(scope="module")
def world(tmp_path_factory, digits_dir):
    """A service (stand-in jobs, real replicas), one fake ended job whose weights (the small CNN) are
    published, and the predict phase's predictions on 8 validation images."""
    tmp = tmp_path_factory.mktemp("serving")
    settings = Settings(home=tmp / "home", visdom_ports=port_range(20), serve_ports=port_range(20), cpu_slots=2,
                        gpus=(), task_command=(sys.executable, FAKE_TASK), stop_grace_s=3.0, poll_interval_s=0.1,
                        threads=16, component_check=(), serve_torch_threads=1)
    service = LiveService(settings)
    job = service.submit(make_hypes("ok", 1))["id"]
    assert service.wait_ended(job)["state"] == "succeeded"
    run = tmp / "run"
    make_run(run, digits_dir)
    images = tmp / "images"
    images.mkdir()
    for name in sorted(os.listdir(os.path.join(digits_dir, "val", "3")))[:8]:
        (images / name).write_bytes(Path(digits_dir, "val", "3", name).read_bytes())
    predict = subprocess.run([sys.executable, "run_tasks.py", "--hypes", str(run / "hypes.json"), "--tmp_dir", str(run),
                              "--phase", "predict", "--input", str(images)], cwd=REPO, capture_output=True, text=True)
    assert predict.returncode == 0, predict.stderr[-2000:]
    hypes = json.loads((run / "hypes.json").read_text())
    publish(weights_dir(settings.home), "digits_cnn", run / "checkpoints/best.pth", hypes=hypes, metrics={},
            source_job=job, owner="admin")
    expected = json.loads((run / "predictions/predictions.json").read_text())["predictions"]
    holder = {"service": service, "job": job, "images": images, "expected": expected, "settings": settings}
    yield holder
    holder["service"].close()


def wait_ready(service, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = service.call("GET", f"/api/v1/deployments/{name}").json()
        if shown["status"] == "ready":
            return shown
        assert shown["status"] in ("starting", "waiting") and time.monotonic() < deadline, shown
        time.sleep(0.2)


@pytest.mark.slow
def test_a_deployment_answers_as_the_predict_phase_batches_and_is_adopted(world, capsys):
    service = world["service"]
    created = service.call("POST", "/api/v1/deployments", json={"weights": "digits_cnn", "max_batch": 8,
                                                                "max_wait_ms": 200})
    assert created.status_code == 201, created.text
    assert created.json()["examples"]["curl"].endswith("/serve/digits_cnn/predict")
    assert service.call("POST", "/api/v1/deployments", json={"weights": "digits_cnn"}).status_code == 409
    bad = service.call("POST", "/api/v1/deployments", json={"weights": "digits_cnn", "name": "x", "max_batch": 0})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "max_batch"
    shown = wait_ready(service, "digits_cnn")
    pid = shown["replica_states"][0]["pid"]
    # The replica holds one of the two CPU slots: the scheduler's capacity for jobs is one.
    assert service.call("GET", "/api/v1/scheduler").json()["capacity"]["cpu_slots"] == 1

    # The CLI deploys (no replica here), lists and deletes.
    cli = ["--url", service.url, "--token", service.token]
    assert cli_main([*cli, "deploy", "digits_cnn", "--name", "from_cli", "--replicas", "0"]) == 0
    assert cli_main([*cli, "deployments"]) == 0 and cli_main([*cli, "deployments", "delete", "from_cli"]) == 0
    printed = capsys.readouterr().out
    assert "deployment from_cli: stopped (0 replicas on cpu" in printed and "from_cli: deleted" in printed
    assert "digits_cnn" in printed  # the list

    # Several images in one multipart request: the predict phase's answers, in order.
    files = [("images", (p["path"].rsplit("/", 1)[1], open(p["path"], "rb"))) for p in world["expected"]]
    answer = service.call("POST", "/serve/digits_cnn/predict", files=files)
    assert answer.status_code == 200, answer.text
    got = answer.json()["predictions"]
    assert [g.pop("name") for g in got] == [p["path"].rsplit("/", 1)[1] for p in world["expected"]]
    assert got == [{k: v for k, v in p.items() if k != "path"} for p in world["expected"]]

    # Concurrent single-image requests (raw bytes) are batched.
    raw = Path(world["expected"][0]["path"]).read_bytes()
    barrier = threading.Barrier(12)

    def one(_: int) -> dict:
        barrier.wait()
        return service.call("POST", "/serve/digits_cnn/predict?draw=1", data=raw).json()["predictions"][0]

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(12)))
    assert all(a["label"] == got[0]["label"] and a["drawn"] for a in answers)
    metrics = service.call("GET", "/api/v1/deployments/digits_cnn").json()["metrics"]
    assert max(int(size) for size in metrics["batch_sizes"]) > 1, metrics
    assert metrics["requests"] >= 13 and metrics["latency_ms"]["p99"] is not None

    # A bad image among good ones: 400 naming it, nothing answered.
    refused = service.call("POST", "/serve/digits_cnn/predict", files=[("a", ("ok.png", raw)), ("b", ("bad.jpg", b"nope"))])
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "bad.jpg", refused.text

    # The legacy test_single of the job the weights came from answers from the deployment.
    legacy = service.call("POST", "/cauchy/test_single", data={"pid": world["job"],
                                                              "image": base64.b64encode(raw).decode()}).json()
    assert legacy["code"] == "100200" and legacy["content"]["deployment"] == "digits_cnn", legacy
    assert legacy["content"]["prediction"]["label"] == got[0]["label"]

    # A restart of the service adopts the replica: same process, still answering.
    service.close_keeping_jobs()
    service = world["service"] = LiveService(world["settings"])
    shown = wait_ready(service, "digits_cnn", timeout=30)
    assert shown["replica_states"][0]["pid"] == pid
    assert service.call("POST", "/serve/digits_cnn/predict", data=raw).status_code == 200

    # A replica that dies is started again (a new process), its restart counted.
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while service.call("GET", "/api/v1/deployments/digits_cnn").json()["replica_states"][0]["restarts"] == 0:
        assert time.monotonic() < deadline, "the killed replica was not noticed"
        time.sleep(0.2)
    restarted = wait_ready(service, "digits_cnn")["replica_states"][0]
    assert restarted["restarts"] == 1 and restarted["pid"] != pid
    pid = restarted["pid"]

    assert service.call("DELETE", "/api/v1/deployments/digits_cnn").status_code == 204
    assert service.call("GET", "/api/v1/deployments/digits_cnn").status_code == 404
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_batcher_runs_what_arrives_within_the_wait_as_one_batch():
    seen: list[int] = []

    def model(samples: list[int]) -> list[int]:
        seen.append(len(samples))
        time.sleep(0.05)
        return [s * 2 for s in samples]

    metrics = Metrics()
    batcher = Batcher(model, max_batch=4, max_wait_s=0.5, metrics=metrics)
    futures = [batcher.submit(i) for i in range(10)]
    assert [f.result(10) for f in futures] == [i * 2 for i in range(10)]
    batcher.close()
    assert seen == [4, 4, 2] and metrics.snapshot()["batch_sizes"] == {"2": 1, "4": 2}


def test_percentiles_and_the_backends_the_service_offers():
    from cauchy.inference import BACKENDS as REGISTERED

    assert percentiles([]) == {"p50": None, "p99": None}
    assert percentiles([float(v) for v in range(1, 101)]) == {"p50": 50.0, "p99": 99.0}
    assert set(BACKENDS) == set(REGISTERED.names())
