"""A Ray cluster on 127.0.0.1 made of ``cauchy node join`` processes, as the Ray tests and
``bench/ray_launch.py`` use it. A plain module (not a conftest) so the benchmark imports the same class.

Each node is one ``cauchy node join`` process (it becomes ``ray start --block``); every process of its tree
is ended when it stops. Ray reads the pairing key from ``RAY_AUTH_TOKEN`` (token mode), which ``Cluster``
sets in this process too while it lives: the service's own client to the cluster needs it.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from services.config import REPO_ROOT

CLI = "import sys; from services.cli import main; sys.exit(main(sys.argv[1:]))"  # `cauchy` of this checkout
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Node:
    """One ``cauchy node join`` process and the processes it starts."""

    def __init__(self, name: str, log: Path, key: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.name, self.log = name, log
        argv = [sys.executable, "-c", CLI, "node", "join", name, "--key", key, "--ip", "127.0.0.1", *args]
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True, env={**os.environ, **(env or {})})
        self.seen: set[psutil.Process] = set()

    def tree(self) -> list[psutil.Process]:
        """Its processes still running (remembered, so that the orphans of a dead raylet are found too)."""
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
        self.lose()
        self.popen.wait(5)


def cauchy_nodes(dashboard: str) -> list[str]:
    """The names of the cluster's alive Cauchy nodes (empty while the head does not answer)."""
    from ray.util.state import list_nodes

    try:
        return sorted(key.removeprefix("cauchy_node_") for node in list_nodes(address=dashboard, raise_on_missing_output=False)
                      if node.state == "ALIVE" for key in (node.resources_total or {}) if key.startswith("cauchy_node_"))
    except Exception:
        return []


class Cluster:
    """A head and further nodes, each with its CPU slots (and GPUs: Ray only counts them, so a CPU machine may
    declare some); ``close`` ends them all."""

    def __init__(self, cpus: dict[str, int], gpus: dict[str, int] | None = None) -> None:
        self.key = secrets.token_hex(16)
        self._saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.key)
        self.temp = Path(tempfile.mkdtemp(prefix="cr", dir="/tmp"))  # Ray's socket paths must stay short
        gcs, dashboard = free_port(), free_port()
        self.address, self.dashboard = f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}"
        self.nodes: dict[str, Node] = {}
        started = time.monotonic()
        try:
            for index, (name, count) in enumerate(cpus.items()):
                args = ["--head", "--dashboard-port", str(dashboard), "--client-port", str(free_port()),
                        "--temp-dir", str(self.temp / "ray")] if index == 0 else []
                self.join(name, "--address", self.address, "--cpus", str(count), "--gpus", str((gpus or {}).get(name, 0)),
                          "--agent-port", str(free_port()), *args)
                self.wait(lambda n=index + 1: len(cauchy_nodes(self.dashboard)) == n, self.nodes[name])
        except BaseException:
            self.close()
            raise
        self.start_s = time.monotonic() - started

    def join(self, name: str, *args: str, key: str | None = None, env: dict[str, str] | None = None) -> Node:
        node = self.nodes[name] = Node(name, self.temp / f"{name}.log", key or self.key, *args, env=env)
        return node

    def wait(self, predicate: Callable[[], bool], node: Node) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not predicate():
            if node.popen.poll() is not None:
                raise RuntimeError(f"node {node.name} ended: {node.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {node.name} did not join: {node.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def close(self) -> None:
        for node in reversed(list(self.nodes.values())):
            node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
