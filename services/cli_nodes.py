"""``cauchy node``: join this machine to the Ray cluster as a node jobs may run on, or (admin) list the
cluster's nodes and drain one. Joining runs ``ray start --block`` with the pairing key as Ray's token
(``RAY_AUTH_MODE=token``): a machine without the key is refused by the head. The command stays in the
foreground (run it under systemd or tmux); ending it takes the node out of the cluster."""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.config import REPO_ROOT

NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
NODE_RESOURCE_UNITS = 1000  # a job asks for 1 of its node's resource: the number of jobs is bounded elsewhere


def node_name(text: str) -> str:
    if not NAME.match(text):
        raise argparse.ArgumentTypeError(f"a node name is 1-40 letters, digits, '-' or '_', not {text!r}")
    return text


def default_name() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "node"


def join_argv(args: argparse.Namespace) -> list[str]:
    """``ray start`` for this node: its custom resource ``cauchy_node_<name>``, its CPUs and GPUs."""
    from services.executors.node_group import node_resource

    host, _, port = args.address.rpartition(":")
    argv = [str(Path(sys.executable).with_name("ray")), "start", "--block", "--disable-usage-stats",
            "--resources", json.dumps({node_resource(args.name): NODE_RESOURCE_UNITS})]
    if args.head:
        argv += ["--head", "--port", port, "--dashboard-host", host, "--dashboard-port", str(args.dashboard_port),
                 "--include-dashboard", "true"]
    else:
        argv += ["--address", args.address]
    for flag, value in (("--num-cpus", args.cpus), ("--num-gpus", args.gpus), ("--node-ip-address", args.ip),
                        ("--dashboard-agent-listen-port", args.agent_port), ("--temp-dir", args.temp_dir),
                        ("--ray-client-server-port", args.client_port)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def join_environment(environ: Mapping[str, str], key: str) -> dict[str, str]:
    """Ray's token mode with the pairing key, and the checkout and Python the node's jobs run with."""
    return {**environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": key,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), environ.get("PYTHONPATH", "")]))}


def cmd_join(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("CAUCHY_NODE_KEY", "")
    if not key:
        print("cauchy node join: the pairing key is missing (--key or CAUCHY_NODE_KEY; an admin sees it on the "
              "admin page, GET /api/v1/nodes)", file=sys.stderr)
        return 2
    argv = join_argv(args)
    os.execve(argv[0], argv, join_environment(os.environ, key))
    return 0  # not reached: ray start replaces this process


def cmd_node(args: argparse.Namespace, client: Any) -> int:
    """``list``, ``drain NAME``, ``undrain NAME`` through the service (admin)."""
    if args.action == "list":
        reply = client.call("GET", "/api/v1/nodes")
        for node in reply["nodes"]:
            print(f"{node['name']:<20} {node['address']:<16} gpus {node['load']['gpus']}/{node['gpus']}  "
                  f"cpu {node['load']['cpu_slots']}/{node['cpus']}  jobs {node['jobs']}"
                  f"{'  drained' if node['drained'] else ''}")
        return 0
    client.call("POST", f"/api/v1/nodes/{args.name}/drain", json={"drain": args.action == "drain"})
    return 0


def add_parser(sub: Any) -> None:
    node = sub.add_parser("node", help="join this machine to the Ray cluster (join), or (admin) list, drain, undrain")
    node.add_argument("action", choices=("join", "list", "drain", "undrain"))
    node.add_argument("name", nargs="?", type=node_name, default=default_name(),
                      help="join, drain, undrain: the node's name (default: the host name)")
    node.add_argument("--address", default="127.0.0.1:6379", help="join: the head's HOST:PORT")
    node.add_argument("--key", help="join: the pairing key (else CAUCHY_NODE_KEY)")
    node.add_argument("--head", action="store_true", help="join: start the head of a new cluster here")
    node.add_argument("--dashboard-port", type=int, default=8265, help="join --head: the service's CAUCHY_RAY_ADDRESS port")
    node.add_argument("--cpus", type=int, help="join: CPU slots jobs may use here (default: Ray's count)")
    node.add_argument("--gpus", type=int, help="join: GPUs jobs may use here (default: Ray's count)")
    node.add_argument("--ip", help="join: this node's address as the others reach it")
    node.add_argument("--agent-port", type=int, help="join: Ray's dashboard agent port (two nodes on one machine)")
    node.add_argument("--temp-dir", help="join --head: Ray's session directory")
    node.add_argument("--client-port", type=int, help="join --head: Ray client server port (two heads on one machine)")
