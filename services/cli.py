"""``cauchy``: run the service (``serve``) or drive jobs over the REST API, so nothing needs the page.

    cauchy serve [--config FILE]
    cauchy submit HYPES [--set k=v ...] [--phase P] [--gpus N] [--priority N] [--name NAME]
    cauchy list [--state S] [--limit N] | show ID | stop ID | resume ID | logs ID [--stream S] [--follow]
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from services.text import printable

DEFAULT_URL = "http://127.0.0.1:8399"


class Client:
    """The REST API from a terminal; an error reply raises ``SystemExit`` with its message."""

    def __init__(self, url: str, user: str) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self.http = requests.Session()
        self.http.headers["X-Cauchy-User"] = user

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, self.base + path, timeout=60, **kwargs)
        except requests.ConnectionError:
            raise SystemExit(f"error: no Cauchy service at {self.base} (start it with `cauchy serve`)") from None
        body = response.json()
        if response.status_code >= 400:
            err = body["error"]
            raise SystemExit(f"error: {printable(err['message'])}" + (f" [{printable(err['field'])}]" if err.get("field") else ""))
        return body


def hypes_argument(value: str) -> Any:
    """A local JSON file is sent as a document; anything else is a name under the server's hypes/."""
    path = Path(value)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else value


def cmd_serve(args: argparse.Namespace) -> int:
    from services.app import serve
    from services.config import load_settings

    serve(load_settings(args.config))
    return 0


def cmd_submit(args: argparse.Namespace, client: Client) -> int:
    body = {"hypes": hypes_argument(args.hypes), "overrides": args.overrides, "phase": args.phase,
            "resources": {"gpus": args.gpus}, "priority": args.priority}
    if args.name:
        body["name"] = args.name
    job = client.call("POST", "/jobs", json=body)
    print(f"job {job['id']} {job['state']} (queue position {job['queue_position']})")
    return 0


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    page = client.call("GET", "/jobs", params={"state": args.state or "", "limit": args.limit})
    print(f"{'ID':>6}  {'STATE':10} {'PHASE':8} {'USER':12} {'GPUS':>4}  NAME")
    for job in page["jobs"]:
        print(f"{job['id']:>6}  {job['state']:10} {job['phase']:8} {printable(job['user'])[:12]:12} "
              f"{job['resources']['gpus']:>4}  {printable(job['name'])}")
    print(f"({len(page['jobs'])} of {page['total']})")
    return 0


def cmd_show(args: argparse.Namespace, client: Client) -> int:
    print(json.dumps(client.call("GET", f"/jobs/{args.id}"), indent=2))
    return 0


def cmd_stop(args: argparse.Namespace, client: Client) -> int:
    job = client.call("POST", f"/jobs/{args.id}/stop")
    print(f"job {job['id']} {job['state']}")
    return 0


def cmd_resume(args: argparse.Namespace, client: Client) -> int:
    job = client.call("POST", f"/jobs/{args.id}/resume")
    print(f"job {job['id']} {job['state']}, resuming job {args.id}")
    return 0


def cmd_logs(args: argparse.Namespace, client: Client) -> int:
    params: dict[str, Any] = {"stream": args.stream}
    while True:
        chunk = client.call("GET", f"/jobs/{args.id}/logs", params=params)
        sys.stdout.write(chunk["text"])
        sys.stdout.flush()
        if not args.follow:
            return 0
        if not chunk["text"] and client.call("GET", f"/jobs/{args.id}")["state"] not in ("queued", "running", "stopping"):
            return 0
        params["offset"] = chunk["next_offset"]
        time.sleep(0 if chunk["text"] else 1)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cauchy", description="Run the Cauchy control service, or drive its jobs.")
    p.add_argument("--url", default=os.environ.get("CAUCHY_URL", DEFAULT_URL), help="the service (CAUCHY_URL)")
    p.add_argument("--user", default=os.environ.get("CAUCHY_USER") or getpass.getuser())
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the control service (waitress)")
    serve.add_argument("--config", help="a TOML settings file (else CAUCHY_CONFIG; CAUCHY_* variables win)")
    submit = sub.add_parser("submit", help="queue a job")
    submit.add_argument("hypes", help="a local JSON file, or a name under the server's hypes/")
    submit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument("--phase", default="train", choices=("train", "test", "finetune"))
    submit.add_argument("--gpus", type=int, default=0)
    submit.add_argument("--priority", type=int, default=0)
    submit.add_argument("--name")
    listing = sub.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--state", help="comma-separated states")
    listing.add_argument("--limit", type=int, default=50)
    for name in ("show", "stop", "resume"):
        sub.add_parser(name, help=f"{name} a job").add_argument("id", type=int)
    logs = sub.add_parser("logs", help="print a job's log")
    logs.add_argument("id", type=int)
    logs.add_argument("--stream", default="stdout", choices=("stdout", "stderr", "visdom"))
    logs.add_argument("--follow", "-f", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "serve":
        return cmd_serve(args)
    commands = {"submit": cmd_submit, "list": cmd_list, "show": cmd_show, "stop": cmd_stop,
                "resume": cmd_resume, "logs": cmd_logs}
    return commands[args.command](args, Client(args.url, args.user))
