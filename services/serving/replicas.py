"""Deployments and their replicas: model-server processes started, watched, adopted and ended like jobs.

The supervisor's thread calls :meth:`Serving.tick` each tick, with what running jobs hold. A replica
holds one CPU slot (``device: cpu``) or one GPU (``cuda``) from its start to its end; the supervisor
takes what replicas hold out of the capacity its scheduling policy sees, so jobs and replicas never
share a slot or a GPU, and charges it to the deployment's owner (fair share). A replica waits while no
slot or GPU is free. Each replica is its own process group (``start_new_session``), on a port of
``CAUCHY_SERVE_PORTS``, recorded with its pid at once: a restarted service adopts live replicas and
starts again the ones that are gone. A replica that dies is started again up to ``MAX_RESTARTS`` times;
one whose model fails to load (its ``/ready`` says why) is failed at once, with that reason.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.config import Settings
from services.jobs.environment import scrubbed_environment
from services.jobs.outcome import last_error_line, read_tail
from services.jobs.ports import PortPool, PortsExhausted
from services.jobs.procs import Proc, kill_leftovers
from services.jobs.store import Store
from services.serving.batching import percentiles
from services.serving.models import FAILED, READY, STARTING, WAITING, Deployment, Replica
from services.weights_store import weights_dir

MAX_RESTARTS = 3
READY_TIMEOUT_S = 0.3  # a readiness probe in the supervisor's tick
METRICS_TIMEOUT_S = 2.0
log = logging.getLogger("cauchy.serving")


class NameTaken(ValueError):
    """A deployment of that name exists."""


def replica_log(home: Path, deployment: str, index: int) -> Path:
    return home / "serving" / deployment / f"replica-{index}.log"


def probe(port: int, route: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """``GET http://127.0.0.1:<port>/<route>``: the status and JSON body (0 and {} when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{route}", timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


def status_of(deployment: Deployment, replicas: list[Replica]) -> str:
    """``ready`` (every replica answers), ``partial``, ``starting``, ``waiting``, ``failed`` or ``stopped`` (no replicas)."""
    states = [replica.state for replica in replicas]
    if deployment.replicas == 0:
        return "stopped"
    if states and all(state == READY for state in states):
        return READY
    if READY in states:
        return "partial"
    for state in (STARTING, WAITING):
        if state in states:
            return state
    return FAILED


class Serving:
    """Deployments in the database, their replicas' processes here."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.ports = PortPool(*settings.serve_ports)
        self._procs: dict[int, Proc] = {}  # replica id -> its process
        self._lock = threading.RLock()
        self._turn = itertools.count()

    # ----- the database

    def deployments(self) -> list[Deployment]:
        with self.store.session() as session:
            return list(session.scalars(select(Deployment).order_by(Deployment.id)).all())

    def get(self, name: str) -> Deployment | None:
        with self.store.session() as session:
            return session.scalar(select(Deployment).where(Deployment.name == name))

    def replicas(self, deployment_id: int | None = None) -> list[Replica]:
        query = select(Replica).order_by(Replica.deployment_id, Replica.index)
        if deployment_id is not None:
            query = query.where(Replica.deployment_id == deployment_id)
        with self.store.session() as session:
            return list(session.scalars(query).all())

    def _update(self, replica_id: int, **fields: Any) -> None:
        with self.store.session() as session:
            replica = session.get(Replica, replica_id)
            if replica is not None:
                for key, value in fields.items():
                    setattr(replica, key, value)

    def create(self, **fields: Any) -> Deployment:
        """A new deployment and its replica rows, waiting: the next tick starts what the resources allow.
        Raises ``NameTaken`` when a deployment of that name exists."""
        with self._lock, self.store.session() as session:
            if session.scalar(select(Deployment.id).where(Deployment.name == fields["name"])) is not None:
                raise NameTaken(fields["name"])
            deployment = Deployment(created_at=time.time(), **fields)
            session.add(deployment)
            session.flush()
            for index in range(deployment.replicas):
                session.add(Replica(deployment_id=deployment.id, index=index, state=WAITING, restarts=0))
        log.info("deployment %s: created (weights %s, %d replicas on %s)", deployment.name, deployment.weights,
                 deployment.replicas, deployment.device)
        return deployment

    def delete(self, deployment: Deployment) -> None:
        """End the deployment's replicas (each group SIGTERM, then SIGKILL) and forget it."""
        with self._lock:
            for replica in self.replicas(deployment.id):
                self._end(replica)
            with self.store.session() as session:
                for replica in session.scalars(select(Replica).where(Replica.deployment_id == deployment.id)):
                    session.delete(replica)
                session.delete(session.get(Deployment, deployment.id))
        log.info("deployment %s: deleted", deployment.name)

    # ----- resources

    def held(self) -> list[tuple[str, str | None]]:
        """``(owner, gpu or None for a CPU slot)`` for each replica that holds a resource (has a process)."""
        owners = {deployment.id: deployment.owner for deployment in self.deployments()}
        return [(owners.get(replica.deployment_id, ""), replica.gpu) for replica in self.replicas()
                if replica.pid is not None]

    # ----- the supervisor's tick

    def recover(self) -> None:
        """After a (re)start of the service: adopt live replicas; the others wait to be started again."""
        with self._lock:
            for replica in self.replicas():
                if replica.pid is None:
                    continue
                proc = Proc.adopt(replica.pid, replica.pid_started)
                if proc is not None:
                    self._procs[replica.id] = proc
                    self.ports.hold([replica.port])
                    log.info("deployment replica %d: adopted (pid %d, port %s)", replica.id, proc.pid, replica.port)
                    continue
                kill_leftovers(replica.pid, replica.pid_started)
                self._update(replica.id, state=WAITING if replica.state != FAILED else FAILED, pid=None,
                             pid_started=None, port=None, gpu=None,
                             reason="its process was gone when the service restarted")

    def tick(self, jobs_gpus: set[str], jobs_cpu_slots: int) -> None:
        """Record replicas that ended, promote those that answer ``/ready``, start waiting ones that fit."""
        with self._lock:
            deployments = {deployment.id: deployment for deployment in self.deployments()}
            replicas = self.replicas()
            for replica in replicas:
                proc = self._procs.get(replica.id)
                if proc is not None and not proc.alive():
                    self._ended(replica, proc)
                elif proc is not None and replica.state == STARTING:
                    self._check_ready(replica, proc)
            replicas = self.replicas()
            gpus_taken = set(jobs_gpus) | {replica.gpu for replica in replicas if replica.pid is not None and replica.gpu}
            slots_taken = jobs_cpu_slots + sum(1 for replica in replicas if replica.pid is not None and not replica.gpu)
            for replica in replicas:
                deployment = deployments.get(replica.deployment_id)
                if replica.state != WAITING or replica.pid is not None or deployment is None:
                    continue
                if deployment.device == "cuda":
                    free = [gpu for gpu in self.settings.gpus if gpu not in gpus_taken]
                    if not free:
                        self._wait(replica, "waiting for a free GPU")
                        continue
                    gpus_taken.add(free[0])
                    self._start(deployment, replica, free[0])
                elif slots_taken >= self.settings.cpu_slots:
                    self._wait(replica, "waiting for a free CPU slot")
                else:
                    slots_taken += 1
                    self._start(deployment, replica, None)

    def _wait(self, replica: Replica, reason: str) -> None:
        if replica.reason != reason:
            self._update(replica.id, reason=reason)

    def _start(self, deployment: Deployment, replica: Replica, gpu: str | None) -> None:
        try:
            port = self.ports.allocate()
        except PortsExhausted as exc:
            self._wait(replica, f"waiting for a port: {exc}")
            return
        home = self.settings.home
        path = replica_log(home, deployment.name, replica.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "services.serving.model_server", "--name", deployment.name,
                "--weights-dir", str(weights_dir(home)), "--weights", deployment.weights, "--port", str(port),
                "--device", deployment.device, "--backend", deployment.backend,
                "--max-batch", str(deployment.max_batch), "--max-wait-ms", str(deployment.max_wait_ms),
                "--torch-threads", str(self.settings.serve_torch_threads)]
        env = scrubbed_environment(os.environ, CUDA_VISIBLE_DEVICES=gpu or "", CAUCHY_HOME=str(home))
        try:
            with open(path, "ab") as out:
                proc = Proc.from_popen(subprocess.Popen(argv, cwd=self.settings.repo_root, env=env,
                                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                                        start_new_session=True))
        except OSError as exc:
            self.ports.release(port)
            self._update(replica.id, state=FAILED, reason=f"could not start: {exc}")
            return
        self._procs[replica.id] = proc
        self._update(replica.id, state=STARTING, port=port, gpu=gpu, pid=proc.pid, pid_started=proc.started,
                     started_at=time.time(), reason=None)
        log.info("deployment %s: replica %d starting (pid %d, port %d, %s)", deployment.name, replica.index,
                 proc.pid, port, f"GPU {gpu}" if gpu else "CPU")

    def _check_ready(self, replica: Replica, proc: Proc) -> None:
        status, body = probe(replica.port, "ready", READY_TIMEOUT_S)
        if status == 200:
            self._update(replica.id, state=READY, reason=None)
            log.info("deployment replica %d: ready on port %d", replica.id, replica.port)
        elif status == 503 and body.get("error"):  # the model does not load: starting it again will not help
            self._end(replica)
            self._update(replica.id, state=FAILED, reason=f"the model did not load: {body['error']}")

    def _ended(self, replica: Replica, proc: Proc) -> None:
        """A replica's process exited by itself: start it again (it waits for its resource), or give up."""
        proc.reap()
        proc.signal_group(signal.SIGKILL)
        self._procs.pop(replica.id, None)
        self.ports.release(replica.port)
        code = proc.popen.returncode if proc.popen is not None else None
        deployment = next((d for d in self.deployments() if d.id == replica.deployment_id), None)
        tail = read_tail(replica_log(self.settings.home, deployment.name, replica.index)) if deployment else ""
        why = f"exited with code {code}" if code is not None else "its process ended"
        if line := last_error_line(tail):
            why += f": {line}"
        restarts = replica.restarts + 1
        state = WAITING if restarts <= MAX_RESTARTS else FAILED
        self._update(replica.id, state=state, pid=None, pid_started=None, port=None, gpu=None, restarts=restarts,
                     reason=why if state == WAITING else f"{why} (after {MAX_RESTARTS} restarts)")
        log.warning("deployment replica %d: %s; %s", replica.id, why, "starting it again" if state == WAITING else "failed")

    def _end(self, replica: Replica) -> None:
        proc = self._procs.pop(replica.id, None) or Proc.adopt(replica.pid, replica.pid_started)
        if proc is not None:
            proc.terminate_group(grace=2.0)
        self.ports.release(replica.port)
        self._update(replica.id, pid=None, pid_started=None, port=None, gpu=None)

    def terminate_all(self) -> None:
        """End every replica (tests, ``cauchy shutdown``); deployments stay and start again with the service."""
        with self._lock:
            for replica in self.replicas():
                if replica.pid is not None:
                    self._end(replica)
                    if replica.state != FAILED:
                        self._update(replica.id, state=WAITING)

    # ----- the front door and the API

    def pick(self, name: str) -> int | None:
        """A ready replica's port for the next request to ``name`` (round robin), or None."""
        deployment = self.get(name)
        if deployment is None:
            return None
        ports = [replica.port for replica in self.replicas(deployment.id) if replica.state == READY and replica.port]
        return ports[next(self._turn) % len(ports)] if ports else None

    def describe(self, deployment: Deployment, with_metrics: bool = False) -> dict[str, Any]:
        """A deployment as the API shows it: its settings, status and replicas (and their metrics)."""
        replicas = self.replicas(deployment.id)
        out = {"name": deployment.name, "weights": deployment.weights, "owner": deployment.owner,
               "visibility": deployment.visibility, "replicas": deployment.replicas, "device": deployment.device,
               "max_batch": deployment.max_batch, "max_wait_ms": deployment.max_wait_ms,
               "backend": deployment.backend, "created_at": deployment.created_at,
               "status": status_of(deployment, replicas), "url": f"/serve/{deployment.name}/predict",
               "replica_states": [{"index": r.index, "state": r.state, "port": r.port, "gpu": r.gpu, "pid": r.pid,
                                   "restarts": r.restarts, "reason": r.reason, "started_at": r.started_at}
                                  for r in replicas]}
        if with_metrics:
            out["metrics"] = self.metrics(replicas)
        return out

    def metrics(self, replicas: list[Replica]) -> dict[str, Any]:
        """Each ready replica's figures (``GET /metrics``) and their sum; percentiles over their latest requests."""
        per, latencies = [], []
        totals = {"requests": 0, "images": 0, "errors": 0, "batches": 0}
        sizes: dict[str, int] = {}
        for replica in replicas:
            if replica.state != READY or not replica.port:
                continue
            status, body = probe(replica.port, "metrics", METRICS_TIMEOUT_S)
            if status != 200:
                continue
            latencies += body.pop("recent_latencies_ms", [])
            per.append({"index": replica.index, **body})
            for key in totals:
                totals[key] += body.get(key, 0)
            for size, count in body.get("batch_sizes", {}).items():
                sizes[size] = sizes.get(size, 0) + count
        mean = sum(int(k) * v for k, v in sizes.items()) / max(1, totals["batches"])
        return {**totals, "batch_sizes": sizes, "mean_batch": round(mean, 3), "latency_ms": percentiles(latencies),
                "replicas": per}
