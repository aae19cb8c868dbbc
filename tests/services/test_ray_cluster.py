"""The ``ray`` executor on a real two-node Ray cluster on 127.0.0.1, token authentication on.

Both nodes are joined with ``cauchy node join`` (``ray start --block``; the head ``a`` with 1 CPU slot, ``b``
with 2) and live for the module. The service runs with ``CAUCHY_EXECUTOR=ray`` and no shared home: a job's
node streams its logs and metrics home and uploads its checkpoints. Every process a node started is ended at
the end (the ``ray start`` process, then whatever of its tree is left).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from services.config import REPO_ROOT, Settings
from services.jobs import files
from tests.services.live_service import FAKE_TASK, LiveService, make_hypes, port_range, wait_for

pytestmark = pytest.mark.slow
KEY = secrets.token_hex(16)
CLI = "import sys; from services.cli import main; sys.exit(main(sys.argv[1:]))"  # `cauchy` of this checkout


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Node:
    """One ``cauchy node join`` process (it becomes ``ray start --block``) and the processes it starts."""

    def __init__(self, name: str, log: Path, *args: str, key: str = KEY, env: dict[str, str] | None = None) -> None:
        self.name, self.log = name, log
        argv = [sys.executable, "-c", CLI, "node", "join", name, "--key", key, "--ip", "127.0.0.1", *args]
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True, env={**os.environ, **(env or {})})
        self.seen: set[psutil.Process] = set()

    def up(self, predicate: Callable[[], bool]) -> Callable[[], bool]:
        """``predicate``, failing at once when the node's command has ended (its log says why)."""
        def check() -> bool:
            assert self.popen.poll() is None, f"node {self.name} ended: {self.log.read_text()[-3000:]}"
            return predicate()
        return check

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.popen.pid)
            self.seen |= {root, *root.children(recursive=True)}
        except psutil.Error:
            pass
        return [ps for ps in self.seen if ps.is_running()]

    def lose(self) -> None:
        """The machine is lost: SIGKILL to every process of the node, its raylet and the jobs' processes."""
        for ps in self.tree():
            try:
                ps.kill()
            except psutil.Error:
                pass

    def stop(self) -> None:
        self.tree()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            pass
        for ps in self.tree():
            try:
                ps.kill()
            except psutil.Error:
                pass
        self.popen.wait(5)


def cluster_nodes(address: str) -> list[str]:
    from ray.util.state import list_nodes

    try:
        return sorted(key for node in list_nodes(address=address, raise_on_missing_output=False)
                      if node.state == "ALIVE" for key in (node.resources_total or {}) if key.startswith("cauchy_node_"))
    except Exception:
        return []


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=KEY)  # the service's own client to the cluster
    temp = Path(tempfile.mkdtemp(prefix="cr", dir="/tmp"))  # Ray's socket paths must stay short
    gcs, dashboard = free_port(), free_port()
    address, dashboard_url = f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}"
    nodes = [Node("a", temp / "a.log", "--head", "--address", address, "--dashboard-port", str(dashboard),
                  "--cpus", "1", "--agent-port", str(free_port()), "--client-port", str(free_port()),
                  "--temp-dir", str(temp / "ray"))]
    try:
        wait_for(nodes[0].up(lambda: cluster_nodes(dashboard_url) == ["cauchy_node_a"]), 90, "the head")
        nodes.append(Node("b", temp / "b.log", "--address", address, "--cpus", "2", "--agent-port", str(free_port())))
        wait_for(nodes[1].up(lambda: len(cluster_nodes(dashboard_url)) == 2), 90, "the second node")
        yield {"address": address, "dashboard": dashboard_url, "nodes": {node.name: node for node in nodes},
               "temp": temp}
    finally:
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture(scope="module")
def service(cluster: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    settings = Settings(home=tmp_path_factory.mktemp("ray-home"), visdom_ports=port_range(20), cpu_slots=1,
                        gpus=(), task_command=(sys.executable, FAKE_TASK), stop_grace_s=3.0, visdom_linger_s=5.0,
                        poll_interval_s=0.2, threads=8, component_check=(), executor="ray",
                        ray_address=cluster["dashboard"])
    live = LiveService(settings)
    executor = live.supervisor.executor
    executor.settings = executor.settings.replace(node_service_url=live.url)  # known once waitress bound its port
    yield live
    live.close()


def run_record(live: LiveService, job_id: int) -> dict:
    return files.read_json(files.job_dir(live.settings.jobs_dir, job_id) / files.RAY_RUN) or {}


def test_a_job_on_the_second_node_streams_home_and_succeeds(service: LiveService):
    job = service.submit(make_hypes("ok", iters=5))
    done = service.wait_ended(job["id"], timeout=120)
    assert done["state"] == "succeeded", done
    assert run_record(service, job["id"])["node"] == "b"  # the node with the most free CPU slots
    directory = files.job_dir(service.settings.jobs_dir, job["id"])
    assert "fake task ok" in (directory / "stdout.log").read_text()
    assert "resume=None" in (directory / "stdout.log").read_text()
    losses = [e for e in service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"] if e["name"] == "loss"]
    assert [e["step"] for e in losses] == [1, 2, 3, 4, 5]
    assert (directory / "checkpoints" / "latest.pth").is_file()  # uploaded, renamed into place
    env = json.loads(next((directory / "visdom").glob("*.json")).read_text())  # fed by the service, saved at the end
    loss = next(window for window in env["jsons"].values() if window["title"] == "loss")
    assert loss["content"]["data"][0]["x"] == [1, 2, 3, 4, 5]
    nodes = service.call("GET", "/api/v1/nodes").json()
    assert [node["name"] for node in nodes["nodes"]] == ["a", "b"] and nodes["key"] == KEY


def test_a_node_route_refuses_a_wrong_token(service: LiveService):
    reply = service.call("PUT", "/api/v1/jobs/1/node/files/stdout.log?offset=0", data=b"x",
                         headers={"X-Cauchy-Job-Token": "0" * 64})
    assert reply.status_code == 403, reply.text


def test_a_node_without_the_key_cannot_join(cluster: dict):
    log = cluster["temp"] / "intruder.log"
    intruder = Node("c", log, "--address", cluster["address"], "--cpus", "1", key="not-the-key",
                    env={"RAY_gcs_server_port_wait_time_s": "2"})  # Ray's connection retries: 2 instead of 20
    assert intruder.popen.wait(60) != 0
    assert "InvalidAuthToken" in log.read_text()
    assert cluster_nodes(cluster["dashboard"]) == ["cauchy_node_a", "cauchy_node_b"]


def test_a_job_whose_node_is_lost_resumes_on_the_other_node(service: LiveService, cluster: dict):
    job = service.submit(make_hypes("periodic", iters=150))
    directory = files.job_dir(service.settings.jobs_dir, job["id"])
    wait_for(lambda: (directory / "checkpoints" / "latest.pth").is_file(), 60, "the first uploaded checkpoint")
    assert run_record(service, job["id"])["node"] == "b"
    cluster["nodes"]["b"].lose()
    requeued = service.wait(job["id"], lambda j: j["preemptions"], timeout=90)
    assert "node b" in requeued["preemptions"][0]["how"], requeued["preemptions"]
    done = service.wait_ended(job["id"], timeout=120)
    assert done["state"] == "succeeded", done
    assert run_record(service, job["id"])["node"] == "a"
    out = (directory / "stdout.log").read_text()
    assert "resume=" in out and "resume=None" not in out  # the node downloaded the checkpoint first
    steps = [e["step"] for e in service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"]
             if e["name"] == "loss"]
    assert steps[-1] == 150
