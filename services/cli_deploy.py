"""``cauchy deploy``: serve published weights over HTTP, and look after the deployments.

    cauchy deploy WEIGHTS [--name N] [--replicas R] [--device cpu|cuda] [--max-batch B] [--max-wait-ms T]
                          [--backend torch] [--visibility V] [--wait]
    cauchy deployments [list] | show NAME | delete NAME

``deploy --wait`` waits until every replica answers, then prints how to call it (curl and Python).
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

from services.text import printable

WAIT_POLL_S = 1.0


def add_parsers(sub: Any) -> None:
    deploy = sub.add_parser("deploy", help="serve published weights at /serve/<name>/ (see docs/serving.md)")
    deploy.add_argument("weights", help="the published weights' name")
    deploy.add_argument("--name", help="the deployment's name (default: the weights')")
    deploy.add_argument("--replicas", type=int, help="model-server processes, each holding a CPU slot or a GPU (1)")
    deploy.add_argument("--device", choices=("cpu", "cuda"))
    deploy.add_argument("--max-batch", type=int, help="images run together at most (8)")
    deploy.add_argument("--max-wait-ms", type=float, help="how long a request waits for others to batch with (5)")
    deploy.add_argument("--backend", help="torch (default) or onnxruntime (runs the weights' ONNX export)")
    deploy.add_argument("--visibility", help="who may call it: private, public or group:<name> (default: the weights')")
    deploy.add_argument("--wait", action="store_true", help="wait until it is ready (or failed)")
    listing = sub.add_parser("deployments", help="deployments: list, show NAME, delete NAME")
    listing.add_argument("action", nargs="?", default="list", choices=("list", "show", "delete"))
    listing.add_argument("name", nargs="?")


def cmd_deploy(args: argparse.Namespace, client: Any) -> int:
    body = {"weights": args.weights, **{key: value for key, value in (
        ("name", args.name), ("replicas", args.replicas), ("device", args.device), ("max_batch", args.max_batch),
        ("max_wait_ms", args.max_wait_ms), ("backend", args.backend), ("visibility", args.visibility))
        if value is not None}}
    deployment = client.call("POST", "/deployments", json=body)
    print(f"deployment {deployment['name']}: {deployment['status']} ({deployment['replicas']} replicas on "
          f"{deployment['device']}, max batch {deployment['max_batch']}, max wait {deployment['max_wait_ms']:g} ms)")
    if not args.wait:
        return 0
    while deployment["status"] in ("starting", "waiting", "partial"):
        time.sleep(WAIT_POLL_S)
        deployment = client.call("GET", f"/deployments/{deployment['name']}")
    print(f"deployment {deployment['name']}: {deployment['status']}")
    for replica in deployment["replica_states"]:
        if replica["reason"]:
            print(f"  replica {replica['index']}: {printable(replica['reason'])}")
    if deployment["status"] != "ready":
        return 1
    print(f"\n{deployment['examples']['curl']}\n\n{deployment['examples']['python']}")
    return 0


def cmd_deployments(args: argparse.Namespace, client: Any) -> int:
    if args.action == "list":
        print(f"{'NAME':24} {'STATUS':9} {'WEIGHTS':24} {'REPLICAS':>8} DEVICE")
        for d in client.call("GET", "/deployments")["deployments"]:
            print(f"{printable(d['name'])[:24]:24} {d['status']:9} {printable(d['weights'])[:24]:24} "
                  f"{d['replicas']:>8} {d['device']}")
        return 0
    if not args.name:
        raise SystemExit(f"error: deployments {args.action} needs a NAME")
    if args.action == "show":
        print(json.dumps(client.call("GET", f"/deployments/{args.name}"), indent=2))
    else:
        client.call("DELETE", f"/deployments/{args.name}")
        print(f"deployment {args.name}: deleted")
    return 0
