"""A job spanning several nodes, as its Ray job's driver runs it (``node_run`` hands over when the spec has a
``group``, written by ``ray_cluster.RayExecutor``).

Cauchy chose the nodes (the policy's GPUs name them; a CPU job's are the executor's choice); Ray enforces the
choice: a placement group of one bundle per node (``STRICT_SPREAD``), each bundle that node's
``cauchy_node_<name>`` resource with the job's GPUs, CPU slots and memory there, reserves them all together
or waits. One actor per bundle (``NodeRank``) runs ``node_run`` for its node rank: ``run_tasks.py ...
--nnodes M --node-rank r --master-addr <rank 0's node> --master-port <a free port there>``, the
torchrun-style static rendezvous of docs/distributed.md. Rank 0's node sends the job's files home as a
one-node job's does; the others send their logs under ``nodes/<r>/``.

The driver passes a stop (Ray's SIGTERM to it) on to every node rank; once one rank ends badly, or its node
is lost (its actor died), the others are stopped too, and killed after the grace period. It then writes the
job's exit status: rank 0's, else the first rank's that failed, or ``files.LOST_KEY`` naming the lost node
(the service requeues a preemptible job from its last checkpoint). The actors and the placement group are
removed at the end. Ray is imported inside the functions (the module runs on the nodes).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cauchy.lifeline import die_with_parent
from services.executors.node_run import REPO_ROOT, SPEC_VAR, TOKEN_VAR, Link, rank_prefix
from services.jobs import files
from services.jobs.wrap import status_of

NODE_RESOURCE = "cauchy_node_"  # + the node's name: the custom resource that pins a job to its node
POLL_S = 0.5


def node_resource(name: str) -> str:
    return f"{NODE_RESOURCE}{name}"


class NodeRank:
    """One node rank (a Ray actor in its bundle): ``node_run`` for its part of the job, in a session of its own
    so that the driver can stop it (SIGTERM: a checkpoint) or kill it with all its processes; it dies with the
    actor (an actor that died alone, its node still up, leaves nothing running)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None

    def meeting_point(self) -> tuple[str, int]:
        """This node's address and a port free on it: where the ranks meet (asked of rank 0's actor)."""
        import ray

        address = ray.util.get_node_ip_address()
        with socket.socket() as sock:
            sock.bind((address, 0))
            return address, sock.getsockname()[1]

    def start(self, spec: dict[str, Any], token: str) -> None:
        env = {**os.environ, SPEC_VAR: json.dumps(spec), TOKEN_VAR: token}
        self.child = subprocess.Popen([sys.executable, "-m", "services.executors.node_run"], cwd=REPO_ROOT, env=env,
                                      stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)

    def wait(self) -> int:
        """``node_run``'s exit code (negative: the signal that ended it)."""
        return self.child.wait() if self.child is not None else 0

    def signal(self, signum: int, group: bool) -> None:
        """``signum`` to ``node_run`` (which passes SIGTERM on to the task), or to its whole session."""
        if self.child is None or self.child.poll() is not None and not group:
            return
        try:
            if group:
                os.killpg(self.child.pid, signum)
            else:
                self.child.send_signal(signum)
        except ProcessLookupError:
            pass


def first_line(exc: Exception) -> str:
    """An exception in one line (Ray's errors carry whole tracebacks)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def rank_spec(spec: dict[str, Any], rank: int, address: str, port: int) -> dict[str, Any]:
    """What ``node_run`` runs on node rank ``rank``: the job's task with the launcher's options of that rank."""
    group = spec["group"]
    nodes = len(group["nodes"])
    shared = spec.get("shared_dir")
    return {**{key: value for key, value in spec.items() if key != "group"},
            "args": [*spec["args"], "--nnodes", str(nodes), "--node-rank", str(rank), "--master-addr", address,
                     "--master-port", str(port)],
            "env": {**spec["env"], "CUDA_VISIBLE_DEVICES": group["devices"][rank]},
            "prefix": rank_prefix(rank),
            "shared_dir": f"{shared}/{rank_prefix(rank)}" if shared and rank else shared,
            "banner": f"node rank {rank} of {nodes} on node {group['nodes'][rank]}; the ranks meet at {address}:{port}"}


def exit_status(codes: dict[int, int | None], lost: str | None) -> dict[str, Any]:
    """The job's exit status from its node ranks' ``node_run`` codes (None: its node was lost)."""
    if lost is not None:
        return {files.LOST_KEY: lost}
    failed = [codes[rank] for rank in sorted(codes) if codes[rank]]
    code = failed[0] if failed else 0
    return status_of(128 - code if code > 128 else code)  # node_run exits 128 + N for its task's signal N


def write_exit(spec: dict[str, Any], token: str, status: dict[str, Any]) -> None:
    """The job's exit status, where the service reads it (after every node rank's own)."""
    if spec.get("shared_dir"):
        files.write_json(Path(spec["shared_dir"]) / files.EXIT_FILE, status)
    else:
        Link(spec["service"], spec["job"], token).write(files.EXIT_FILE, json.dumps(status).encode(), 0, done=True)


def run_group(spec: dict[str, Any], token: str) -> int:
    """Reserve the nodes, run a node rank on each, pass a stop on, end them all; the driver's exit code."""
    import ray
    from ray.exceptions import RayActorError, RayError
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = spec["group"]
    ray.init(log_to_driver=False)  # the cluster that runs this Ray job
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # after ray.init, whose own handler ends the process at once
        signal.signal(signum, lambda *_: stop.set())
    bundle = {key: value for key, value in group["bundle"].items() if value}
    pg = placement_group([{**bundle, node_resource(name): 1} for name in group["nodes"]],
                         strategy="STRICT_SPREAD", name=f"cauchy-job-{spec['job']}")
    actors: list[Any] = []
    try:
        while not ray.wait([pg.ready()], timeout=POLL_S)[0]:  # all the nodes together, or wait
            if stop.is_set():
                write_exit(spec, token, {"exit_code": None, "signal": int(signal.SIGTERM)})
                return 128 + signal.SIGTERM
        actor = ray.remote(NodeRank)
        actors = [actor.options(num_cpus=bundle.get("CPU", 0), num_gpus=bundle.get("GPU", 0),
                                memory=bundle.get("memory"), resources={node_resource(name): 1}, max_concurrency=4,
                                scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=rank))
                  .remote() for rank, name in enumerate(group["nodes"])]
        try:
            address, port = ray.get(actors[0].meeting_point.remote())
            ray.get([node.start.remote(rank_spec(spec, rank, address, port), token)
                     for rank, node in enumerate(actors)])
        except RayActorError as exc:  # an actor died before its rank started: its node is gone
            status = exit_status({}, f"a node rank did not start: {first_line(exc)}")
        else:
            print(f"node_group: job {spec['job']}: {len(actors)} node ranks on {', '.join(group['nodes'])}, "
                  f"meeting at {address}:{port}", flush=True)
            status = exit_status(*watch(spec, actors, stop, RayActorError))
        write_exit(spec, token, status)
        return 0 if status.get("exit_code") == 0 else status.get("exit_code") or 1
    finally:
        for node in actors:
            try:
                ray.get(node.signal.remote(signal.SIGKILL, True), timeout=10)
                ray.kill(node)
            except RayError:
                pass
        remove_placement_group(pg)


def watch(spec: dict[str, Any], actors: list[Any], stop: threading.Event,
          actor_died: type[Exception]) -> tuple[dict[int, int | None], str | None]:
    """Wait for every node rank; once a stop comes, a rank fails or its node is lost, SIGTERM to the others,
    and SIGKILL to all their processes after the grace period. Each rank's code, and the lost node if any."""
    import ray

    waits = {node.wait.remote(): rank for rank, node in enumerate(actors)}
    codes: dict[int, int | None] = {}
    lost: str | None = None
    stopped_at: float | None = None
    while waits:
        done, _ = ray.wait(list(waits), timeout=POLL_S)
        for ref in done:
            rank = waits.pop(ref)
            try:
                codes[rank] = ray.get(ref)
            except actor_died as exc:  # with its node
                codes[rank] = None
                lost = lost or f"node {spec['group']['nodes'][rank]} (node rank {rank}) was lost: {first_line(exc)}"
        if stopped_at is None and (stop.is_set() or lost or any(codes.values())):
            stopped_at = time.monotonic()
            for rank in waits.values():
                actors[rank].signal.remote(signal.SIGTERM, False)
        elif stopped_at is not None and time.monotonic() - stopped_at > spec["grace_s"]:
            for rank in waits.values():
                actors[rank].signal.remote(signal.SIGKILL, True)
            stopped_at = float("inf")  # killed once
    return codes, lost
