"""The real thing: waitress, Visdom and run_tasks.py training the digits classifier on 127.0.0.1."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from live_service import ADMIN_PASSWORD
from real_tasks import DIGITS, digits_overrides, final_metrics, synthetic

from services.cli import Client, sign_in
from services.config import REPO_ROOT
from services.jobs.procs import Proc
from services.jobs.usage import SAVE_EVERY_S

pytestmark = pytest.mark.slow


def test_two_iteration_digits_job_end_to_end(real_settings, service_factory, digits_dir):
    service = service_factory(real_settings)
    job = service.submit(DIGITS, overrides=digits_overrides(digits_dir, 2), name="digits x2")
    running = service.wait_metrics(job["id"], timeout=120)
    first = service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"][0]
    assert first["name"] == "max_iters" and first["value"] == 2
    if running["state"] == "running":
        assert {"task", "visdom"} <= {p["role"] for p in running["processes"]}
    page = requests.get(running["visdom"]["direct_url"], timeout=10)
    assert page.status_code == 200 and "<title>visdom</title>" in page.text.lower()
    done = service.wait_ended(job["id"], timeout=120)
    assert done["state"] == "succeeded" and done["exit_code"] == 0, done
    names = {e["name"] for e in service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"]}
    assert {"max_iters", "loss", "lr", "top1"} <= names
    stdout = service.call("GET", f"/api/v1/jobs/{job['id']}/logs").json()["text"]
    assert "training small_cnn" in stdout and "2 iterations" in stdout
    artifacts = {a["path"] for a in service.call("GET", f"/api/v1/jobs/{job['id']}/artifacts").json()["artifacts"]}
    assert {"checkpoints/latest.pth", "hypes.json", "metrics.jsonl"} <= artifacts
    checkpoint = service.call("GET", f"/api/v1/jobs/{job['id']}/artifacts/checkpoints/latest.pth")
    assert checkpoint.status_code == 200 and len(checkpoint.content) > 1000
    # Charts after the end: shut the viewer, open the charts, and it is back from the saved env.
    assert list((Path(done["job_dir"]) / "visdom").glob("*.json")), "the task saved no Visdom env"
    assert service.call("DELETE", f"/api/v1/jobs/{job['id']}/visdom").status_code == 200
    viewer = service.call("POST", f"/api/v1/jobs/{job['id']}/visdom").json()
    assert viewer["up"] and requests.get(viewer["direct_url"], timeout=10).status_code == 200


def test_detection_job_plots_its_loss_in_visdom_like_classification(real_settings, service_factory, tmp_path):
    shapes = synthetic("det/shapes", tmp_path / "shapes", train=4, val=2)
    service = service_factory(real_settings)
    job = service.submit("det/yolov3_small_shapes.json", name="shapes x2", overrides=[
        f"data.data_dir={shapes}", "data.workers=0", "solver.max_iters=2", "solver.display_iter=1",
        "train.batch_size=2", "train.data_transformer.input_size=[64,64]", "val.data_transformer.input_size=[64,64]",
        "logging.progress_bar=false"])
    done = service.wait_ended(job["id"], timeout=180)
    assert done["state"] == "succeeded", done
    names = {(e["phase"], e["name"]) for e in service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"]}
    assert {("train", "loss"), ("val", "map50")} <= names
    envs = list((Path(done["job_dir"]) / "visdom").glob("*.json"))
    assert envs, "the task saved no Visdom env"
    titles = {w["title"] for w in json.loads(envs[0].read_text())["jsons"].values()}
    assert {"loss", "map50"} <= titles


def test_segmentation_job_shows_its_miou_and_masks_in_visdom(real_settings, service_factory, tmp_path):
    shapes = synthetic("seg/shapes", tmp_path / "seg_shapes", train=4, val=2)
    service = service_factory(real_settings)
    job = service.submit("seg/lraspp_mobilenetv3small_shapes.json", name="seg shapes x2", overrides=[
        f"data.data_dir={shapes}", "data.workers=0", "solver.max_iters=2", "solver.display_iter=1",
        "train.batch_size=2", "train.aug_trans.random_crop.size=[48,48]", "logging.progress_bar=false"])
    done = service.wait_ended(job["id"], timeout=180)
    assert done["state"] == "succeeded", done
    events = service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"]
    assert {("train", "loss"), ("val", "miou"), ("val", "pixel_acc")} <= {(e["phase"], e["name"]) for e in events}
    assert_visdom_shows(done, "miou", images=2)


def assert_visdom_shows(done: dict, metric: str, images: int) -> None:
    """The ended job's saved Visdom env plots ``metric`` (a value in [0, 1]) and has ``images``
    validation pictures of prediction beside ground truth."""
    envs = list((Path(done["job_dir"]) / "visdom").glob("*.json"))
    assert envs, "the task saved no Visdom env"
    windows = json.loads(envs[0].read_text())["jsons"].values()
    plot = next(w for w in windows if w["title"] == metric)
    assert 0 <= plot["content"]["data"][-1]["y"][-1] <= 1
    pictures = [w for w in windows if w["title"].startswith("val_image_")]
    assert len(pictures) == images and all("prediction | ground truth" in json.dumps(w) for w in pictures)


def test_stop_one_job_and_kill_9_another(real_settings, service_factory, digits_dir):
    service = service_factory(real_settings)
    to_stop = service.submit(DIGITS, overrides=digits_overrides(digits_dir, 100000))
    to_kill = service.submit(DIGITS, overrides=digits_overrides(digits_dir, 100000))
    for job in (to_stop, to_kill):
        service.wait(job["id"], lambda j: any(
            e["name"] == "loss" for e in service.call("GET", f"/api/v1/jobs/{j['id']}/metrics").json()["events"]),
            timeout=120)
    victim = next(p for p in service.job(to_kill["id"])["processes"] if p["role"] == "task")
    os.kill(victim["pid"], signal.SIGKILL)
    service.call("POST", f"/api/v1/jobs/{to_stop['id']}/stop")
    killed = service.wait_ended(to_kill["id"])
    assert killed["state"] == "failed" and killed["exit_signal"] == 9 and "SIGKILL" in killed["reason"]
    stopped = service.wait_ended(to_stop["id"], timeout=90)
    assert stopped["state"] == "stopped" and stopped["exit_code"] == 3, stopped
    assert stopped["last_checkpoint"] and Path(stopped["last_checkpoint"]).stat().st_size > 1000


def test_a_two_process_cpu_job_stops_with_a_checkpoint_and_leaves_nothing(real_settings, service_factory, digits_dir):
    """``resources.processes: 2``: two gloo ranks through torch.distributed.run (docs/distributed.md); a stop
    reaches both ranks, rank 0 saves, all exit, and the job ends stopped with exit code 3."""
    service = service_factory(real_settings)
    job = service.submit(DIGITS, overrides=digits_overrides(digits_dir, 100000), resources={"processes": 2})
    assert job["resources"]["processes"] == 2 and job["resources"]["cpu_slots"] == 2
    service.wait(job["id"], lambda j: any(
        e["name"] == "loss" for e in service.call("GET", f"/api/v1/jobs/{j['id']}/metrics").json()["events"]),
        timeout=180)
    running = [psutil.Process(p["pid"]) for p in service.job(job["id"])["processes"] if p["role"] != "visdom"]
    assert len(running) >= 4  # wrap.py, the launcher, two ranks
    service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    stopped = service.wait_ended(job["id"], timeout=120)
    assert stopped["state"] == "stopped" and stopped["exit_code"] == 3, stopped
    assert stopped["last_checkpoint"] and Path(stopped["last_checkpoint"]).stat().st_size > 1000
    assert "x 2 ranks" in service.call("GET", f"/api/v1/jobs/{job['id']}/logs").json()["text"]
    assert not [p for p in running if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


class ServiceProcess:
    """``python -m services`` as its own process, to be killed and started again."""

    def __init__(self, home: Path, port: int, visdom_ports: tuple[int, int], data_root: Path) -> None:
        self.url = f"http://127.0.0.1:{port}/api/v1"
        self.env = {**os.environ, "CAUCHY_HOME": str(home), "CAUCHY_PORT": str(port), "CAUCHY_CPU_SLOTS": "1",
                    "CAUCHY_VISDOM_PORTS": "{}-{}".format(*visdom_ports), "CAUCHY_GPUS": "none",
                    "CAUCHY_ADMIN_PASSWORD": ADMIN_PASSWORD, "CAUCHY_DATA_ROOTS": str(data_root)}
        self.http = requests.Session()
        self.log = home.parent / "service.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "services"], cwd=REPO_ROOT, env=self.env,
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)
        if "Authorization" not in self.http.headers:  # a token of the admin, valid across restarts
            token = sign_in(Client(self.url.removesuffix("/api/v1"), None), "admin", ADMIN_PASSWORD, "tests")
            self.http.headers["Authorization"] = f"Bearer {token['token']}"

    def kill(self, signum: int = signal.SIGKILL) -> None:
        self.proc.send_signal(signum)
        self.proc.wait(30)

    def job(self, job_id: int) -> dict:
        return self.http.get(f"{self.url}/jobs/{job_id}", timeout=10).json()

    def wait(self, job_id: int, states: set[str], timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while (job := self.job(job_id))["state"] not in states:
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        return job


@pytest.fixture
def service_process(tmp_path: Path, free_port: int, ports, digits_dir: str) -> Iterator[ServiceProcess]:
    live = ServiceProcess(tmp_path / "home", free_port, ports(20), Path(digits_dir).parent)
    yield live
    if live.proc and live.proc.poll() is None:
        live.kill(signal.SIGTERM)
    from services.jobs.store import STATES, Store  # what the service left running: end it
    for job in Store(f"sqlite:///{tmp_path / 'home' / 'cauchy.db'}").in_states(STATES):
        for pid, started in ((job.pid, job.pid_started), (job.visdom_pid, job.visdom_started)):
            proc = Proc.adopt(pid, started)
            if proc:
                proc.terminate_group(grace=1)


def test_restart_of_the_service_loses_no_job(service_process: ServiceProcess, digits_dir: str):
    service_process.start()
    submit = lambda iters: service_process.http.post(f"{service_process.url}/jobs", timeout=60, json={  # noqa: E731
        "hypes": DIGITS, "overrides": digits_overrides(digits_dir, iters)}).json()["id"]
    long_job, queued_job = submit(100000), submit(2)
    service_process.wait(long_job, {"running"})
    deadline = time.monotonic() + 120
    while not (running := service_process.job(long_job))["last_checkpoint"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    service_process.kill(signal.SIGKILL)

    service_process.start()  # 1: the running job is adopted, the queued one waits
    adopted = service_process.job(long_job)
    assert adopted["state"] == "running" and adopted["visdom"]["up"]
    task_pids = {p["pid"] for p in running["processes"] if p["role"] in ("launcher", "task")}
    assert task_pids and task_pids <= {p["pid"] for p in adopted["processes"]}
    assert service_process.job(queued_job)["state"] == "queued"
    service_process.kill(signal.SIGTERM)

    leader = psutil.Process(next(p["pid"] for p in adopted["processes"] if p["role"] == "launcher"))
    os.killpg(leader.pid, signal.SIGKILL)  # the job dies while no service watches
    psutil.wait_procs([leader], timeout=10)
    service_process.start()  # 2: the dead job is lost, with its checkpoint; the queue moves on
    lost = service_process.job(long_job)
    checkpoint = lost["last_checkpoint"]
    assert lost["state"] == "lost" and checkpoint in lost["reason"]
    assert service_process.wait(queued_job, {"succeeded", "failed"})["state"] == "succeeded"
    resumed = service_process.http.post(f"{service_process.url}/jobs/{long_job}/resume", timeout=60).json()
    assert resumed["resume_from"] == checkpoint
    service_process.wait(resumed["id"], {"running"})
    service_process.http.post(f"{service_process.url}/jobs/{resumed['id']}/stop", timeout=10)
    assert service_process.wait(resumed["id"], {"stopped", "failed"})["state"] == "stopped"
    jobs = service_process.http.get(f"{service_process.url}/jobs", timeout=10).json()
    assert jobs["total"] == 3


def test_a_preempted_digits_job_resumes_by_itself_bit_identical_across_a_restart(service_process: ServiceProcess,
                                                                                  digits_dir: str):
    """Two CPU slots filled by one user's low-priority digits jobs; another user's high job arrives: a victim
    checkpoints, goes back to the queue, and ends with the same metrics as its twin that was never stopped.
    The service is killed (-9) while all this happens: no job and no usage is lost."""
    service_process.env.update(CAUCHY_CPU_SLOTS="2", CAUCHY_STOP_GRACE_S="120")
    service_process.start()
    api, http = service_process.url, service_process.http
    for name in ("alice", "bob"):
        assert http.post(f"{api}/users", json={"name": name, "password": "a-password-for-tests"},
                         timeout=10).status_code == 201
    # 1,000 iterations (about 12 s each, idle): the low jobs must outlast the high job's submission on a busy
    # machine (at 40 they sometimes ended before it came, and nothing was preempted).
    overrides = [*digits_overrides(digits_dir, 1000), "solver.checkpoint.every=25", "solver.display_iter=1",
                 "details.deterministic=true"]

    def events(job_id: int) -> list[dict]:
        return http.get(f"{api}/jobs/{job_id}/metrics", timeout=10).json()["events"]

    def submit(user: str, priority: str) -> int:
        reply = http.post(f"{api}/jobs", json={"hypes": DIGITS, "overrides": overrides, "user": user,
                                               "priority": priority}, timeout=60)  # a busy machine
        assert reply.status_code == 201, reply.text
        return reply.json()["id"]

    low = [submit("alice", "low"), submit("alice", "low")]
    for job_id in low:
        deadline = time.monotonic() + 180
        while not final_metrics(events(job_id))[1]:
            assert time.monotonic() < deadline, service_process.job(job_id)
            time.sleep(0.2)
    high = submit("bob", "high")
    deadline = time.monotonic() + 180
    while not (victims := [job for job in map(service_process.job, low) if job["preemptions"]]):
        assert time.monotonic() < deadline, [service_process.job(job_id) for job_id in (*low, high)]
        time.sleep(0.2)
    (victim,) = victims
    usage = {u["user"]: u for u in http.get(f"{api}/scheduler", timeout=10).json()["users"]}
    assert usage["alice"]["cpu_seconds"] > 0
    service_process.kill(signal.SIGKILL)

    service_process.start()
    jobs = http.get(f"{api}/jobs", timeout=10).json()
    assert jobs["total"] == 3
    after = {u["user"]: u for u in http.get(f"{api}/scheduler", timeout=10).json()["users"]}
    # Usage is written every SAVE_EVERY_S: a kill -9 may lose what alice's two slots were charged since the last write.
    unsaved = 2 * (SAVE_EVERY_S + 1.0)
    assert 0 < after["alice"]["cpu_seconds"] and after["alice"]["cpu_seconds"] >= usage["alice"]["cpu_seconds"] - unsaved
    assert service_process.wait(high, {"succeeded", "failed"}, timeout=300)["state"] == "succeeded"
    ended = [service_process.wait(job_id, {"succeeded", "failed", "stopped", "lost"}, timeout=400) for job_id in low]
    assert [job["state"] for job in ended] == ["succeeded", "succeeded"], ended
    victim = next(job for job in ended if job["id"] == victim["id"])
    twin = next(job for job in ended if job["id"] != victim["id"])
    assert len(victim["preemptions"]) == 1 and not twin["preemptions"]
    record = victim["preemptions"][0]
    assert record["for_job"] == high and record["how"] == "stopped after saving a checkpoint"
    assert victim["resume_from"] == record["checkpoint"] and record["checkpoint"].endswith("checkpoints/latest.pth")
    val, losses = final_metrics(events(victim["id"]))
    twin_val, twin_losses = final_metrics(events(twin["id"]))
    assert val and val == twin_val  # bit-identical: the same floats
    assert losses == twin_losses and [step for step, _ in losses] == list(range(1, 1001))
    stdout, offset, size = "", 0, 1
    while offset < size:  # the whole log, a chunk at a time (without an offset the API gives its end)
        chunk = http.get(f"{api}/jobs/{victim['id']}/logs", params={"offset": offset}, timeout=10).json()
        stdout, offset, size = stdout + chunk["text"], chunk["next_offset"], chunk["size"]
    assert f"resumed from {record['checkpoint']} at iteration" in stdout
    log = service_process.log.read_text()  # service.log tells the story with job ids
    assert f"job {high}: queued (" in log
    # The kill may land between the high job's start and its log line: then the restarted service adopts it.
    assert f"job {high}: queued -> running (CPU" in log or f"job {high}: adopted (running" in log
    assert f"job {victim['id']}: running -> stopping (preempted for job {high})" in log
    assert f"job {victim['id']}: stopping -> queued (preempted for job {high}" in log
    assert f"job {victim['id']}: running -> succeeded (finished)" in log and ": adopted (" in log
    assert f"job {low[0]}: viewer started on port" in log
