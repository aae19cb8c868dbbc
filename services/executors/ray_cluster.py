"""The ``ray`` executor (``CAUCHY_EXECUTOR=ray``): each job's task is a Ray job on a cluster
(``CAUCHY_RAY_ADDRESS``, the head's dashboard URL), submitted with Ray's Job Submission API.

Placement is Cauchy's: every node Cauchy may use carries a custom resource ``cauchy_node_<name>`` (set by
``cauchy node join``); the cluster's GPUs are offered to the policy as ``<name>:<index>``, so the policy's
choice names the node, and a job's request (``entrypoint_resources`` with that node's resource, its GPUs,
CPU slots and memory) makes Ray run it there and nowhere else. A CPU job goes to the node with the most free
CPU slots. A job spanning ``nodes`` gets its nodes the same way (the policy's GPUs, an equal part on each; or
the CPU nodes with the most free slots), and its driver reserves them together with a placement group and runs
a node rank on each (``node_group``). Ray enforces the request; stop, exit status, logs and adoption after a restart go through Ray's
job API (the submission id is kept in the job directory, ``files.RAY_RUN``).

On the node, ``node_run`` runs the task and streams its logs, metrics and checkpoints back to the service
(unless ``CAUCHY_SHARED_HOME`` says the job directory is the same path there); the service feeds the job's
Visdom from the metrics it receives. Ray is imported inside the methods only.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauchy import rundir
from cauchy.visualizer import VisdomSink, is_plotted
from services.config import Settings
from services.executors.base import Executor, Launchable, Running
from services.executors.jobtoken import job_token
from services.executors.local import prepare_run_dir, ranks, task_arguments, task_environment
from services.executors.node_group import NODE_RESOURCE, first_line, node_resource
from services.executors.node_run import JOB_DIR, SPEC_VAR, TOKEN_VAR
from services.jobs import files
from services.jobs.policies.base import machine
from services.jobs.store import Job, Store
from services.jobs.viewers import visdom_base_url

log = logging.getLogger(__name__)

GCS_PORT = 6379  # Ray's default head port, shown in the join command
ENTRYPOINT = "python -m services.executors.node_run"
STATUS_EVERY_S = 1.0  # a running job's Ray status is read this often
NODES_EVERY_S = 2.0  # the cluster's nodes are read this often
NODES_TIMEOUT_S = 5
GROUP_STOP_MARGIN_S = 10  # a driver of node ranks: to pass a stop on, kill them after the grace, write the exit
LOG_TAIL = 16 * 1024  # of Ray's driver log, kept in stderr.log when the task left no exit status


def unknown_to_ray(exc: Exception) -> bool:
    """Whether Ray's job API answered that it has no such job (its 404), rather than not answering."""
    return "status code 404" in str(exc) or "does not exist" in str(exc)


@dataclass
class RayRun(Running):
    submission_id: str = ""
    node: str = ""  # where Ray runs the job's driver: its node, or the first of the nodes it spans
    nodes: tuple[str, ...] = ()
    cpu_slots: int = 0  # on each of its nodes
    sink: Any = None  # the VisdomSink the service feeds from the metrics the node streams
    metrics_read: int = 0
    status_read_at: float = 0.0
    terminal: bool = False


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, settings: Settings, store: Store) -> None:
        super().__init__(settings, store)
        self._client_obj: Any = None
        self._nodes: list[dict[str, Any]] = []
        self._nodes_at = 0.0
        self._lost: set[str] = set()  # Ray node ids a job was lost with: no job goes there, even before Ray says so

    # ----- the cluster

    def _client(self) -> Any:
        if self._client_obj is None:
            from ray.job_submission import JobSubmissionClient

            self._client_obj = JobSubmissionClient(self.settings.ray_address)
        return self._client_obj

    def drained_file(self) -> Path:
        return self.settings.home / "drained_nodes.json"

    def drained(self) -> set[str]:
        return set(files.read_json(self.drained_file()) or [])

    def drain(self, node: str, drain: bool = True) -> None:
        """No new job on ``node`` (its running jobs finish); ``drain=False`` takes it back."""
        if drain and node not in {known["name"] for known in self._cluster()}:
            raise LookupError(f"no node {node!r} in the Ray cluster")
        names = self.drained() | {node} if drain else self.drained() - {node}
        files.write_json(self.drained_file(), sorted(names))
        self._nodes_at = 0.0

    def _cluster(self) -> list[dict[str, Any]]:
        """Cauchy's nodes (those with a ``cauchy_node_<name>`` resource) that are alive: name, GPUs, CPUs."""
        now = time.time()
        if now - self._nodes_at < NODES_EVERY_S:
            return self._nodes
        from ray.util.state import list_nodes

        self._nodes_at = now  # a head that does not answer is asked again after NODES_EVERY_S, not at once
        try:
            states = list_nodes(address=self.settings.ray_address, detail=True, raise_on_missing_output=False,
                                timeout=NODES_TIMEOUT_S)
        except Exception as exc:  # the head is unreachable: keep the last view (jobs keep running there)
            log.warning("ray: cannot list nodes at %s: %s", self.settings.ray_address, first_line(exc))
            return self._nodes
        nodes = []
        for state in states:
            total = state.resources_total or {}
            names = [key[len(NODE_RESOURCE):] for key in total if key.startswith(NODE_RESOURCE)]
            if state.state != "ALIVE" or not names or state.node_id in self._lost:
                continue
            nodes.append({"name": names[0], "node_id": state.node_id, "address": state.node_ip,
                          "gpus": int(total.get("GPU", 0)), "cpus": int(total.get("CPU", 0)),
                          "memory_mb": int(total.get("memory", 0) / 2**20)})
        self._nodes = sorted(nodes, key=lambda node: node["name"])
        return self._nodes

    def resources(self) -> tuple[tuple[str, ...], int]:
        """Every GPU of the nodes not drained (``<node>:<index>``) and their CPU slots together."""
        drained = self.drained()
        usable = [node for node in self._cluster() if node["name"] not in drained]
        gpus = tuple(f"{node['name']}:{index}" for node in usable for index in range(node["gpus"]))
        return gpus, sum(node["cpus"] for node in usable)

    def pairing(self) -> dict[str, Any]:
        """Ray's token (the pairing key; ``RAY_AUTH_TOKEN`` or Ray's token file) and the join command."""
        key = os.environ.get("RAY_AUTH_TOKEN", "")
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
        if not key and path.is_file():
            key = path.read_text(encoding="utf-8").strip()
        head = urllib.parse.urlsplit(self.settings.ray_address).hostname or "HEAD"
        return {"key": key, "join": f"cauchy node join --address {head}:{GCS_PORT} --key KEY --name NAME"}

    def machines(self) -> list[tuple[int, int]]:
        """Each alive node's GPUs and CPU slots (drained ones come back), largest first: a job runs on one of
        them, or on as many as it spans."""
        return sorted(((node["gpus"], node["cpus"]) for node in self._cluster()), reverse=True)

    def nodes(self) -> list[dict[str, Any]]:
        """The admin page's list: each node's GPUs, CPUs, what Cauchy's jobs hold there, and its jobs (a job
        spanning nodes is on each of them, holding its share there)."""
        drained = self.drained()
        runs = self.all()
        listed = []
        for node in self._cluster():
            here = [run for run in runs if node["name"] in run.nodes]
            listed.append({**node, "drained": node["name"] in drained, "jobs": [run.job_id for run in here],
                           "load": {"gpus": sum(machine(gpu) == node["name"] for run in here for gpu in run.gpus),
                                    "cpu_slots": sum(run.cpu_slots for run in here)}})
        return listed

    def _place(self, job: Launchable, gpus: tuple[str, ...]) -> list[str]:
        """The nodes of the policy's GPUs, one for each node the job spans (``policies.base.pick_gpus`` gave an
        equal part on each); for a CPU job, those with the most free CPU slots."""
        count = job.nodes or 1
        if gpus:
            nodes = list(dict.fromkeys(machine(gpu) for gpu in gpus))
            if len(nodes) != count:
                raise OSError(f"GPUs {','.join(gpus)} are on {len(nodes)} nodes; the job runs on {count}")
            return nodes
        drained = self.drained()
        held: dict[str, int] = {}
        for run in self.all():
            for name in run.nodes:
                held[name] = held.get(name, 0) + run.cpu_slots
        usable = [node for node in self._cluster() if node["name"] not in drained]
        if len(usable) < count:
            raise OSError(f"{len(usable)} Cauchy nodes are alive and not drained in the Ray cluster at "
                          f"{self.settings.ray_address}; the job spans {count}")
        usable.sort(key=lambda node: (node["cpus"] - held.get(node["name"], 0), node["name"]), reverse=True)
        return [node["name"] for node in usable[:count]]

    # ----- starting

    def _resume(self, job: Launchable, directory: Path) -> tuple[str | None, list[str]]:
        """The resume argument as the node sees it, and the files it downloads first (without a shared home):
        a checkpoint of this job's own directory, with the metrics it continues."""
        if not job.resume_from or self.settings.shared_home:
            return job.resume_from, []
        try:
            name = Path(job.resume_from).resolve().relative_to(directory.resolve()).as_posix()
        except ValueError:
            return job.resume_from, []  # another job's checkpoint: readable only on a shared filesystem
        return f"{JOB_DIR}/{name}", [name, rundir.METRICS]

    def start(self, job: Launchable, gpus: tuple[str, ...], viz_port: int) -> Running:
        directory = prepare_run_dir(self, job)
        nodes = self._place(job, gpus)
        submission_id = f"cauchy-{job.id}-{secrets.token_hex(4)}"
        resume, download = self._resume(job, directory)
        devices = [",".join(gpu.rsplit(":", 1)[1] for gpu in gpus if machine(gpu) == name) for name in nodes]
        env = {**task_environment(self, job, ()), "CUDA_VISIBLE_DEVICES": devices[0]}
        shared = str(directory) if self.settings.shared_home else None
        cpu_slots = 0 if gpus else (job.cpu_slots or 1)  # on each node
        grace = int(self.settings.stop_grace_s) + 1  # Ray's SIGKILL after the stop comes after the service's grace
        spec = {"service": self.settings.service_url_for_nodes, "job": job.id, "task": list(self.settings.task_command[1:]),
                "args": task_arguments(job, shared or JOB_DIR, None, resume, ranks(job, gpus)),
                "download": download, "shared_dir": shared, "env": env}
        if len(nodes) > 1:  # the driver reserves the nodes with a placement group and runs a node rank on each
            grace += GROUP_STOP_MARGIN_S
            spec.update(grace_s=self.settings.stop_grace_s, group={
                "nodes": nodes, "devices": devices,
                "bundle": {"CPU": cpu_slots, "GPU": len(gpus) // len(nodes), "memory": (job.memory_mb or 0) * 2**20}})
        files.write_json(directory / files.RAY_RUN, {"submission_id": submission_id, "node": nodes[0], "nodes": nodes,
                                                       "cpu_slots": cpu_slots})
        try:
            self._submit(job, gpus, nodes, submission_id, spec, cpu_slots, grace)
        except Exception as exc:  # the head unreachable, a request Ray refuses: the job fails to start, saying why
            raise OSError(f"Ray did not take the job: {first_line(exc)}") from exc
        return self._keep(self._run(job.id, job.user, gpus, time.time(), submission_id, tuple(nodes), cpu_slots,
                                    viz_port, self.limits(job)))

    def _submit(self, job: Launchable, gpus: tuple[str, ...], nodes: list[str], submission_id: str,
                spec: dict[str, Any], cpu_slots: int, grace: int) -> None:
        """The Ray job: on one node, the task's own request; spanning nodes, a driver on the first that asks for
        nothing but to be there (the placement group it makes holds the job's resources)."""
        alone = len(nodes) == 1
        self._client().submit_job(
            entrypoint=ENTRYPOINT, submission_id=submission_id, metadata={"cauchy_job": str(job.id)},
            runtime_env={"env_vars": {SPEC_VAR: json.dumps(spec), TOKEN_VAR: job_token(self.settings.home, submission_id),
                                      "RAY_JOB_STOP_WAIT_TIME_S": str(grace)}},
            entrypoint_num_cpus=cpu_slots if alone else 0, entrypoint_num_gpus=len(gpus) if alone else 0,
            entrypoint_memory=int(job.memory_mb * 2**20) if job.memory_mb and alone else None,
            entrypoint_resources={node_resource(nodes[0]): 1})

    def _run(self, job_id: int, user: str, gpus: tuple[str, ...], started: float, submission_id: str,
             nodes: tuple[str, ...], cpu_slots: int, viz_port: int | None, limits: dict[str, Any]) -> RayRun:
        sink = VisdomSink(viz_port, visdom_base_url(job_id)) if viz_port else None
        where = f"node {nodes[0]}" if len(nodes) == 1 else f"nodes {', '.join(nodes)}"
        return RayRun(job_id, user, gpus, started, f"ray job {submission_id} on {where}", **limits,
                      submission_id=submission_id, node=nodes[0], nodes=nodes, cpu_slots=cpu_slots, sink=sink)

    def adopt(self, job: Job) -> Running | None:
        """The Ray job of the run recorded in the job directory, if Ray still runs it."""
        record = files.read_json(files.job_dir(self.settings.jobs_dir, job.id) / files.RAY_RUN)
        if not record:
            return None
        try:
            if self._client().get_job_status(record["submission_id"]).is_terminal():
                return None
        except Exception as exc:  # unknown to the cluster (it was restarted): not adopted; unreachable: adopted
            if unknown_to_ray(exc):
                return None
            log.warning("ray: job %d adopted without Ray's word (%s)", job.id, first_line(exc))
        return self._keep(self._run(job.id, job.user, tuple(filter(None, job.gpus.split(","))),
                                    job.started_at or time.time(), record["submission_id"],
                                    tuple(record.get("nodes") or [record["node"]]), record.get("cpu_slots", 0),
                                    job.visdom_port, self.limits(job)))

    # ----- watching and ending

    def _feed(self, run: RayRun) -> None:
        """New metric events of the job directory (streamed by the node) into the job's Visdom."""
        path = files.job_dir(self.settings.jobs_dir, run.job_id) / rundir.METRICS
        try:
            with open(path, "rb") as fh:
                if fh.seek(0, 2) < run.metrics_read:
                    run.metrics_read = 0  # replaced by a resumed run: drawn again from the start
                fh.seek(run.metrics_read)
                data = fh.read()
        except FileNotFoundError:
            return
        whole = data[:data.rfind(b"\n") + 1]
        run.metrics_read += len(whole)
        if run.sink is None:
            return
        for line in whole.decode("utf-8", "replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and is_plotted(event):
                run.sink.write(event)

    def alive(self, run: RayRun) -> bool:
        self._feed(run)
        now = time.time()
        if run.terminal or now - run.status_read_at < STATUS_EVERY_S:
            return not run.terminal
        run.status_read_at = now
        try:
            run.terminal = self._client().get_job_status(run.submission_id).is_terminal()
        except Exception as exc:  # unreachable: taken to run until Ray says otherwise; unknown: ended (lost)
            run.terminal = unknown_to_ray(exc)
            log.warning("ray: job %d (%s): no status: %s", run.job_id, run.submission_id, first_line(exc))
        return not run.terminal

    def ask_to_stop(self, run: RayRun, at: float) -> None:
        """Ray's stop: SIGTERM to the task (it saves a checkpoint), SIGKILL after the grace period."""
        run.term_sent_at = at
        self._stop(run)

    def kill(self, run: RayRun, reason: str) -> None:
        """A Ray job cannot be SIGKILLed at once through its API: the stop's SIGKILL follows its grace."""
        run.killed_reason = reason
        if run.term_sent_at is None:
            run.term_sent_at = time.time()
            self._stop(run)

    def _stop(self, run: RayRun) -> None:
        try:
            self._client().stop_job(run.submission_id)
        except Exception as exc:
            log.warning("ray: job %d (%s): stop failed: %s", run.job_id, run.submission_id, exc)

    def finish(self, run: RayRun) -> dict[str, Any] | None:
        """How the run ended: the exit status the node wrote (or uploaded); without one, Ray's account, kept
        with the tail of Ray's driver log in stderr.log; a node that vanished is reported lost."""
        self._feed(run)
        if run.sink is not None:
            run.sink.close()
        self._forget(run)
        directory = files.job_dir(self.settings.jobs_dir, run.job_id)
        status = files.read_exit_status(directory)
        if status is not None:
            return status
        try:
            info = self._client().get_job_info(run.submission_id)
        except Exception as exc:
            return {files.LOST_KEY: f"Ray does not know the run {run.submission_id}: {first_line(exc)}"}
        try:  # the driver's log is kept on its node: gone with a lost node
            tail = self._client().get_job_logs(run.submission_id)[-LOG_TAIL:]
        except Exception as exc:
            tail = f"(Ray's log of the run is not readable: {first_line(exc)})\n"
        with open(directory / files.LOGS["stderr"], "a", encoding="utf-8") as fh:
            fh.write(f"\n[ray] {info.status}: {info.message}\n{tail}")
        if info.driver_exit_code is not None:
            code = info.driver_exit_code
            return {"exit_code": code if code >= 0 else None, "signal": -code if code < 0 else None}
        if run.term_sent_at is not None:  # Ray's stop: SIGTERM, SIGKILL after the grace; it keeps no exit code
            return {"exit_code": None, "signal": int(signal.SIGTERM)}
        self._lost |= {node["node_id"] for node in self._nodes if node["name"] == run.node}  # (a rejoin: a new id)
        self._nodes_at = 0.0
        lines = str(info.message or info.status).splitlines()
        died = [line.strip() for line in lines if "node has died" in line]  # Ray's words for a lost node
        return {files.LOST_KEY: f"node {run.node}: {(died or lines or ['ended'])[0]}"}

    def kill_leftovers(self, job: Job) -> None:
        """Nothing: a Ray job that was not adopted has ended."""

    def sample(self, run: RayRun) -> list[dict[str, Any]]:
        """The task's processes are on its node, out of the service's sight."""
        return []

    def terminate_all(self) -> None:
        for run in self.all():
            self._stop(run)
