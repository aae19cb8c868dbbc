"""The ``ray`` executor on a real two-node Ray cluster on 127.0.0.1, token authentication on.

Both nodes are joined with ``cauchy node join`` (``ray_nodes.Cluster``: the head ``a`` with 1 CPU slot, ``b``
with 2) and live for the module. The service runs with ``CAUCHY_EXECUTOR=ray`` behind nginx and no shared home:
a job's node streams its logs and metrics home and uploads its checkpoints through nginx. Every process a node started is ended at
the end.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from services.config import REPO_ROOT, Settings
from services.executors.ray_cluster import RayExecutor
from services.jobs import files
from services.jobs.store import ENDED
from tests.nginx.stack import Stack
from tests.services.live_service import FAKE_TASK, LiveService, make_hypes, port_range, wait_for
from tests.services.ray_nodes import Cluster, cauchy_nodes
from tests.services.real_tasks import DIGITS, digits_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster({"a": 1, "b": 2}, gpus={"b": 1}) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, digits_dir: str) -> Iterator[Stack]:
    """The service behind nginx; its nodes reach it through nginx too (no shared home)."""
    live = Stack(Settings(home=tmp_path_factory.mktemp("ray-home"), visdom_ports=port_range(20), cpu_slots=1,
                          data_roots=(REPO_ROOT / "data", Path(digits_dir).parent),
                          gpus=(), task_command=(sys.executable, FAKE_TASK), stop_grace_s=3.0, visdom_linger_s=60.0,
                          poll_interval_s=0.2, threads=8, component_check=(), executor="ray",
                          ray_address=cluster.dashboard))
    executor = live.service.supervisor.executor
    executor.settings = executor.settings.replace(node_service_url=live.url)  # known once nginx is up
    yield live
    live.close()


@pytest.fixture(scope="module")
def service(stack: Stack) -> LiveService:
    return stack.service


def run_record(live: LiveService, job_id: int) -> dict:
    return files.read_json(files.job_dir(live.settings.jobs_dir, job_id) / files.RAY_RUN) or {}


def test_a_job_on_the_second_node_streams_home_and_succeeds(stack: Stack, service: LiveService, cluster: Cluster):
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
    page = requests.get(f"{stack.url}/visdom/{job['id']}/", headers={"Authorization": f"Bearer {service.token}"},
                        timeout=30)
    assert page.status_code == 200 and "<title>visdom</title>" in page.text.lower()  # the charts, through nginx
    nodes = service.call("GET", "/api/v1/nodes").json()
    assert [node["name"] for node in nodes["nodes"]] == ["a", "b"] and nodes["key"] == cluster.key


def test_a_gpu_job_runs_on_the_node_of_the_gpu_the_policy_chose(service: LiveService):
    """``b`` declares one GPU (Ray counts it; there is none): the policy gives ``b:0``, Ray runs it on ``b``."""
    assert service.call("GET", "/api/v1/scheduler").json()["capacity"]["gpus"] == ["b:0"]
    refused = service.call("POST", "/api/v1/jobs", json={"hypes": make_hypes("ok"), "resources": {"gpus": 2}})
    assert refused.status_code == 400 and "asked for 2 GPUs; this host has 1" in refused.text  # no node has 2
    job = service.submit(make_hypes("ok", iters=2), resources={"gpus": 1})
    done = service.wait_ended(job["id"], timeout=120)
    assert done["state"] == "succeeded" and done["resources"]["assigned_gpus"] == ["b:0"], done
    assert run_record(service, job["id"])["node"] == "b"
    assert "gpus='0'" in (files.job_dir(service.settings.jobs_dir, job["id"]) / "stdout.log").read_text()


def test_a_job_spanning_both_nodes_trains_with_a_node_rank_on_each(service: LiveService, cluster: Cluster,
                                                                   digits_dir: str):
    """``resources.nodes: 2``: the digits model trained by two gloo ranks, one on each node, in a placement group
    of a bundle on ``b`` and one on ``a``; both nodes count the job; rank 0's node streams the job's files home
    (its checkpoint says two ranks trained), rank 1's its log under ``nodes/1/``; the group is removed at the end."""
    import torch

    refused = service.call("POST", "/api/v1/jobs", json={"hypes": make_hypes("ok"), "resources": {"nodes": 3}})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "resources.nodes", refused.text
    executor = service.supervisor.executor
    fake = executor.settings.task_command
    executor.settings = executor.settings.replace(task_command=(sys.executable, "run_tasks.py"))  # the real task
    try:
        job = service.submit(DIGITS, overrides=digits_overrides(digits_dir, 4), resources={"nodes": 2})
        assert job["resources"]["nodes"] == 2

        def on_both() -> bool:
            listed = service.call("GET", "/api/v1/nodes").json()["nodes"]
            return all(job["id"] in node["jobs"] and node["load"]["cpu_slots"] == 1 for node in listed)

        wait_for(on_both, 60, "the job on both nodes")
        done = service.wait_ended(job["id"], timeout=300)
    finally:
        executor.settings = executor.settings.replace(task_command=fake)
    directory = files.job_dir(service.settings.jobs_dir, job["id"])
    assert done["state"] == "succeeded", (done, (directory / "stderr.log").read_text()[-3000:])
    assert run_record(service, job["id"])["nodes"] == ["b", "a"]  # the most free CPU slots first: b holds rank 0
    assert "node rank 0 of 2 on node b" in (directory / "stdout.log").read_text()
    assert "node rank 1 of 2 on node a" in (directory / "nodes" / "1" / "stdout.log").read_text()
    assert json.loads((directory / "nodes" / "1" / "exit.json").read_text())["exit_code"] == 0
    steps = [e["step"] for e in service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"]
             if e["name"] == "loss"]
    assert steps and steps[-1] == 4
    checkpoint = torch.load(directory / "checkpoints" / "latest.pth", weights_only=True)  # uploaded by b
    assert checkpoint["trainer"]["world_size"] == 2 and len(checkpoint["rng_ranks"]) == 2
    wait_for(lambda: placement_removed(cluster, job["id"]), 60, "the job's placement group removed")


def placement_removed(cluster: Cluster, job_id: int) -> bool:
    """Whether the job's placement group was made and is removed (its bundles free for the next job)."""
    from ray.util.state import list_placement_groups

    groups = list_placement_groups(address=cluster.dashboard, filters=[("name", "=", f"cauchy-job-{job_id}")],
                                   raise_on_missing_output=False)
    return bool(groups) and all(group.state == "REMOVED" for group in groups)


def test_a_stop_reaches_every_node_rank(service: LiveService, cluster: Cluster):
    """A stop is Ray's SIGTERM to the job's driver, which passes it on to each node rank: both save and exit 3."""
    job = service.submit(make_hypes("run"), resources={"nodes": 2})
    directory = files.job_dir(service.settings.jobs_dir, job["id"])
    wait_for(lambda: all("iter 2" in read(directory / name) for name in ("stdout.log", "nodes/1/stdout.log")), 120,
             "both node ranks running")
    service.call("POST", f"/api/v1/jobs/{job['id']}/stop")
    done = service.wait_ended(job["id"], timeout=90)
    assert done["state"] == "stopped" and done["exit_code"] == 3, done
    assert json.loads(read(directory / "nodes" / "1" / "exit.json"))["exit_code"] == 3  # rank 1 saved too
    assert "node_rank=1" in read(directory / "nodes" / "1" / "stdout.log")
    wait_for(lambda: placement_removed(cluster, job["id"]), 60, "the stopped job's placement group removed")


def test_a_job_spanning_nodes_whose_node_rank_dies_is_requeued_whole(service: LiveService, cluster: Cluster):
    """Node rank 1's actor (on ``a``) killed: to the driver, its node is lost. Rank 0 is stopped, the job is
    requeued from its last checkpoint and resumes on both nodes again. (``a`` is the head: the node itself
    cannot be lost here without the cluster.)"""
    job = service.submit(make_hypes("periodic", iters=150), resources={"nodes": 2})
    directory = files.job_dir(service.settings.jobs_dir, job["id"])
    service.wait(job["id"], lambda j: (directory / "checkpoints" / "latest.pth").is_file() or j["state"] in ENDED, 180)
    assert service.job(job["id"])["state"] == "running", service.job(job["id"])
    actor = next(ps for ps in cluster.nodes["a"].tree() if " ".join(ps.cmdline()).startswith("ray::NodeRank"))
    actor.kill()
    requeued = service.wait(job["id"], lambda j: j["preemptions"], timeout=90)
    assert "node a (node rank 1) was lost" in requeued["preemptions"][0]["how"], requeued["preemptions"]
    done = service.wait_ended(job["id"], timeout=120)
    assert done["state"] == "succeeded", done
    for out in (read(directory / "stdout.log"), read(directory / "nodes" / "1" / "stdout.log")):
        assert "resume=" in out and "resume=None" not in out  # each node rank downloaded the checkpoint first


def read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def test_an_admin_drains_a_node_and_takes_it_back(service: LiveService):
    def capacity() -> int:
        return service.call("GET", "/api/v1/scheduler").json()["capacity"]["cpu_slots"]

    assert capacity() == 3
    assert service.call("POST", "/api/v1/nodes/b/drain", json={"drain": True}).json() == {"node": "b", "drained": True}
    nodes = {node["name"]: node for node in service.call("GET", "/api/v1/nodes").json()["nodes"]}
    assert nodes["b"]["drained"] and not nodes["a"]["drained"] and capacity() == 1  # no new job goes to b
    service.call("POST", "/api/v1/nodes/b/drain", json={"drain": False})
    assert capacity() == 3
    assert service.call("POST", "/api/v1/nodes/nowhere/drain", json={}).status_code == 404


def test_a_node_route_refuses_a_wrong_token(service: LiveService):
    reply = service.call("PUT", "/api/v1/jobs/1/node/files/stdout.log?offset=0", data=b"x",
                         headers={"X-Cauchy-Job-Token": "0" * 64})
    assert reply.status_code == 403, reply.text


def test_a_node_without_the_key_cannot_join(cluster: Cluster):
    intruder = cluster.join("c", "--address", cluster.address, "--cpus", "1", key="not-the-key",
                            env={"RAY_gcs_server_port_wait_time_s": "2"})  # Ray's connection retries: 2, not 20
    assert intruder.popen.wait(60) != 0
    assert "InvalidAuthToken" in intruder.log.read_text()
    assert cauchy_nodes(cluster.dashboard) == ["a", "b"]


def test_a_job_whose_node_is_lost_resumes_on_the_other_node(service: LiveService, cluster: Cluster):
    job = service.submit(make_hypes("periodic", iters=150))
    directory = files.job_dir(service.settings.jobs_dir, job["id"])
    wait_for(lambda: (directory / "checkpoints" / "latest.pth").is_file(), 180, "the first uploaded checkpoint")
    assert run_record(service, job["id"])["node"] == "b"
    cluster.nodes["b"].lose()
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


def test_a_restarted_service_adopts_its_running_ray_job(service: LiveService):
    """Last: the module's supervisor stops (its routes still answer the node); a new executor over its database
    adopts the job through Ray by the submission id in its directory, and stops it through Ray."""
    job = service.wait_metrics(service.submit(make_hypes("run"))["id"], timeout=120)
    service.supervisor.shutdown()
    store = service.app.extensions["cauchy"].store
    executor = RayExecutor(service.settings, store)
    run = executor.adopt(store.get(job["id"]))
    assert run is not None and run.submission_id == run_record(service, job["id"])["submission_id"]
    assert executor.alive(run)
    executor.ask_to_stop(run, time.time())
    wait_for(lambda: not executor.alive(run), 60, "the stop through Ray")
    assert executor.finish(run)["exit_code"] == 3  # the checkpoint saved on SIGTERM (its uploaded exit status)
    directory = files.job_dir(service.settings.jobs_dir, job["id"])
    files.write_json(directory / files.RAY_RUN, {"submission_id": "cauchy-unknown", "node": "a"})
    assert executor.adopt(store.get(job["id"])) is None  # a run the cluster does not know (it was restarted)
