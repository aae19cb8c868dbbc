"""``cauchy``: run the service (``serve``) or drive jobs over the REST API, so nothing needs the page.

    cauchy serve [--config FILE]
    cauchy shutdown [--config FILE]                 (stop the service on this machine with its jobs and viewers)
    cauchy hypes upgrade OLD.json [-o NEW.json]     (an old torchcv file in Cauchy's form; local, no service)
    cauchy login [--name NAME] [--password-stdin]
    cauchy submit HYPES [--set k=v ...] [--unset k ...] [--phase P] [--gpus N | --processes N] [--nodes M]
                        [--priority low|normal|high|N]
                        [--time-limit S] [--name NAME] [--visibility V]
    cauchy list [--state S] [--limit N] | show ID | stop ID | resume ID | logs ID [--stream S] [--follow]
    cauchy token create NAME [--expires-in-days N] | token list | token revoke ID
    cauchy user add NAME [--admin] [--display-name D] [--max-priority N] | user passwd NAME | user disable NAME
    cauchy group add NAME | group member GROUP USER [--admin] [--remove]
    cauchy dataset upload PATH [--name N] [--task T] [--wait] | dataset list | show NAME | delete NAME [--version N]
    cauchy dataset register NAME PATH (admin; services/cli_datasets.py)
    cauchy export --weights NAME --format onnx|torchscript|edge [-o FILE]
    cauchy deploy WEIGHTS [--replicas R] [--device D] [--max-batch B] [--max-wait-ms T] [--wait]
    cauchy deployments [list] | show NAME | delete NAME   (services/cli_deploy.py)

Every request sends ``Authorization: Bearer <token>``: ``--token``, else ``CAUCHY_TOKEN``, else the
token ``cauchy login`` stored for that service in ``$XDG_CONFIG_HOME/cauchy/tokens.json`` (0600).
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import requests

from cauchy.hypes import unset_override
from cauchy.manifest import EXPORTS
from services import cli_datasets, cli_deploy, cli_nodes
from services.text import printable
from services.user_files import read_map, user_file, write_map

DEFAULT_URL = "http://127.0.0.1:8399"
EXPORT_WAIT_S = 900  # an export rebuilds and traces the model on the server: minutes for a large one on a CPU


def tokens_file() -> Path:
    """Where ``cauchy login`` keeps a token per service URL."""
    return user_file("XDG_CONFIG_HOME", ".config", "tokens.json")


def stored_tokens() -> dict[str, str]:
    return read_map(tokens_file())


def store_token(url: str, token: str) -> Path:
    """Save ``token`` for ``url``; the file is written 0600 (it is a password) and replaced atomically."""
    return write_map(tokens_file(), {**stored_tokens(), url: token})


class Client:
    """The REST API from a terminal; an error reply raises ``SystemExit`` with its message."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.base = self.url + "/api/v1"
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, timeout: float = 60, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, self.base + path, timeout=timeout, **kwargs)
        except requests.ConnectionError:
            raise SystemExit(f"error: no Cauchy service at {self.base} (start it with `cauchy serve`)") from None
        if response.status_code == 204:
            return None
        body = response.json()
        if response.status_code >= 400:
            err = body["error"]
            hint = " (run `cauchy login`, or set CAUCHY_TOKEN)" if response.status_code == 401 else ""
            raise SystemExit(f"error: {printable(err['message'])}"
                             + (f" [{printable(err['field'])}]" if err.get("field") else "") + hint)
        return body


def read_password(args: argparse.Namespace, prompt: str = "Password: ") -> str:
    """From standard input's first line with ``--password-stdin`` (scripts), else asked for without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def hypes_argument(value: str) -> Any:
    """A local JSON file is sent as a document; anything else is a name under the server's hypes/."""
    path = Path(value)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else value


def cmd_serve(args: argparse.Namespace) -> int:
    from services.app import serve
    from services.config import load_settings

    serve(load_settings(args.config))
    return 0


def cmd_shutdown(args: argparse.Namespace) -> int:
    """Stopping the service alone leaves its jobs running (the next start adopts them); this stops all."""
    from services.config import load_settings
    from services.shutdown import request_shutdown

    settings = load_settings(args.config)
    print(request_shutdown(settings.home, timeout=settings.stop_grace_s + 60))
    return 0


def cmd_hypes(args: argparse.Namespace) -> int:
    """``hypes upgrade``: the Cauchy form of a torchcv file on stdout (or ``-o``), what changed on stderr."""
    from cauchy.hypes import HypesError, load_hypes
    from cauchy.hypes_upgrade import upgrade

    try:
        result = upgrade(load_hypes(args.file))
    except HypesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.report() if result.is_torchcv else f"{args.file}: already in Cauchy's form, nothing to translate",
          file=sys.stderr)
    text = json.dumps(result.hypes, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def sign_in(client: Client, name: str, password: str, token_name: str) -> dict[str, Any]:
    """Sign in with a password, make a token named ``token_name`` and sign out; returns the new token's
    reply (``token`` holds the secret). Scripts and benchmarks use it to get a token for a service."""
    signed_in = client.call("POST", "/auth/login", json={"name": name, "password": password})
    client.http.headers["X-CSRF-Token"] = signed_in["csrf_token"]
    token = client.call("POST", "/tokens", json={"name": token_name[:100]})
    client.call("POST", "/auth/logout")
    del client.http.headers["X-CSRF-Token"]
    return token


def cmd_login(args: argparse.Namespace, client: Client) -> int:
    """Sign in with a password once, make a token for this machine and keep it; the session ends."""
    name = args.name or getpass.getuser()
    token = sign_in(client, name, read_password(args), f"cauchy login on {socket.gethostname()}")
    path = store_token(client.url, token["token"])
    print(f"signed in as {name}; token {token['id']} saved in {path}")
    return 0


def cmd_token(args: argparse.Namespace, client: Client) -> int:
    if args.action == "create":
        body: dict[str, Any] = {"name": args.name}
        if args.expires_in_days:
            body["expires_in_days"] = args.expires_in_days
        token = client.call("POST", "/tokens", json=body)
        print(token["token"])
        print(f"token {token['id']} ({token['name']}): shown once, keep it safe", file=sys.stderr)
    elif args.action == "list":
        print(f"{'ID':>5}  {'CREATED':16}  {'LAST USED':16}  {'EXPIRES':16}  NAME")
        for token in client.call("GET", "/tokens")["tokens"]:
            print(f"{token['id']:>5}  {when(token['created_at'])}  {when(token['last_used_at'])}  "
                  f"{when(token['expires_at'])}  {token['name']}")
    else:
        client.call("DELETE", f"/tokens/{int(args.name)}")
        print(f"token {args.name} revoked")
    return 0


def when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else f"{'-':16}"


def cmd_user(args: argparse.Namespace, client: Client) -> int:
    if args.action == "add":
        body = {"name": args.name, "password": read_password(args, f"Password for {args.name}: "),
                "role": "admin" if args.admin else "member", "display_name": args.display_name or "",
                "max_priority": args.max_priority}
        user = client.call("POST", "/users", json=body)
        print(f"user {user['name']} ({user['role']}) added")
    elif args.action == "passwd":
        client.call("PATCH", f"/users/{args.name}", json={"password": read_password(args, f"New password for {args.name}: ")})
        print(f"password of {args.name} changed")
    else:
        client.call("PATCH", f"/users/{args.name}", json={"disabled": True})
        print(f"user {args.name} disabled")
    return 0


def cmd_group(args: argparse.Namespace, client: Client) -> int:
    if args.action == "add":
        client.call("POST", "/groups", json={"name": args.group})
        print(f"group {args.group} added")
    elif args.remove:
        client.call("DELETE", f"/groups/{args.group}/members/{args.user}")
        print(f"{args.user} removed from {args.group}")
    else:
        client.call("POST", f"/groups/{args.group}/members", json={"user": args.user, "admin": args.admin})
        print(f"{args.user} is a{'n admin' if args.admin else ' member'} of {args.group}")
    return 0


def cmd_submit(args: argparse.Namespace, client: Client) -> int:
    resources = {"gpus": args.gpus, **({"processes": args.processes} if args.processes else {}),
                 **({"nodes": args.nodes} if args.nodes else {}),
                 **({"time_limit_s": args.time_limit} if args.time_limit else {})}
    priority = int(args.priority) if args.priority.lstrip("-").isdigit() else args.priority
    body = {"hypes": hypes_argument(args.hypes), "overrides": args.overrides, "phase": args.phase,
            "resources": resources, "priority": priority}
    if args.name:
        body["name"] = args.name
    if args.visibility:
        body["visibility"] = args.visibility
    job = client.call("POST", "/jobs", json=body)
    print(f"job {job['id']} {job['state']} (queue position {job['queue_position']}): {job['queue']['reason']}"
          if job["queue"] else f"job {job['id']} {job['state']}")
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


def cmd_export(args: argparse.Namespace, client: Client) -> int:
    """Export published weights on the server (it rebuilds the model from the job that trained it); with
    ``-o``, download the file too."""
    entry = client.call("POST", f"/weights/{args.weights}/export", json={"format": args.format},
                        timeout=EXPORT_WAIT_S)
    record = entry["exports"][args.format]
    print(f"{entry['name']}: {args.format} export {record['file']} ({record['size']} bytes, sha256 {record['sha256']}) "
          f"at {client.url}{record['url']}")
    if args.output:
        with client.http.get(client.url + record["url"], stream=True, timeout=60) as response:
            response.raise_for_status()
            with open(args.output, "wb") as fh:
                for block in response.iter_content(1 << 20):
                    fh.write(block)
        print(f"saved as {args.output}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cauchy", description="Run the Cauchy control service, or drive its jobs.")
    p.add_argument("--url", default=os.environ.get("CAUCHY_URL", DEFAULT_URL), help="the service (CAUCHY_URL)")
    p.add_argument("--token", default=os.environ.get("CAUCHY_TOKEN"),
                   help="an API token (CAUCHY_TOKEN; else the one `cauchy login` saved)")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the control service (waitress)")
    serve.add_argument("--config", help="a TOML settings file (else CAUCHY_CONFIG; CAUCHY_* variables win)")
    shutdown = sub.add_parser("shutdown", help="stop the service on this machine, its jobs and their viewers")
    shutdown.add_argument("--config", help="the service's TOML settings file (for CAUCHY_HOME)")
    hypes = sub.add_parser("hypes", help="upgrade OLD.json: an old torchcv hypes file in Cauchy's form")
    hypes.add_argument("action", choices=("upgrade",))
    hypes.add_argument("file", help="the torchcv hypes file")
    hypes.add_argument("-o", "--output", help="write the Cauchy form here (default: standard output)")
    submit = sub.add_parser("submit", help="queue a job")
    submit.add_argument("hypes", help="a local JSON file, or a name under the server's hypes/")
    submit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hypes entry; KEY=null removes it")
    submit.add_argument("--unset", dest="overrides", action="append", type=unset_override, metavar="KEY",
                        help="remove a hypes entry (it takes its default)")
    submit.add_argument("--phase", default="train", choices=("train", "test", "finetune"))
    submit.add_argument("--gpus", type=int, default=0, help="GPUs; more than one runs one rank a GPU")
    submit.add_argument("--processes", type=int, help="a CPU job's ranks (gloo), one a CPU slot (docs/distributed.md)")
    submit.add_argument("--nodes", type=int, help="machines the job spans, its --gpus or --processes on each (ray executor)")
    submit.add_argument("--priority", default="normal", help="low, normal, high (an admin's grant) or -100..100")
    submit.add_argument("--time-limit", type=float, help="seconds; the job is stopped with a checkpoint after it")
    submit.add_argument("--name")
    submit.add_argument("--visibility", help="private (default), public or group:<name>")
    login = sub.add_parser("login", help="sign in and keep a token for this service")
    login.add_argument("--name", help="your user name (default: your login name)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    token = sub.add_parser("token", help="your API tokens: create NAME, list, revoke ID")
    token.add_argument("action", choices=("create", "list", "revoke"))
    token.add_argument("name", nargs="?", help="create: the token's name; revoke: its id")
    token.add_argument("--expires-in-days", type=float)
    user = sub.add_parser("user", help="(admin) add NAME, passwd NAME, disable NAME")
    user.add_argument("action", choices=("add", "passwd", "disable"))
    user.add_argument("name")
    user.add_argument("--admin", action="store_true", help="add: an admin rather than a member")
    user.add_argument("--display-name")
    user.add_argument("--max-priority", type=int, default=0, help="add: the highest priority they may give a job")
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    group = sub.add_parser("group", help="(admin) add GROUP, member GROUP USER [--admin] [--remove]")
    group.add_argument("action", choices=("add", "member"))
    group.add_argument("group")
    group.add_argument("user", nargs="?")
    group.add_argument("--admin", action="store_true", help="member: they may manage the group's members")
    group.add_argument("--remove", action="store_true", help="member: take them out of the group")
    listing = sub.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--state", help="comma-separated states")
    listing.add_argument("--limit", type=int, default=50)
    for name in ("show", "stop", "resume"):
        sub.add_parser(name, help=f"{name} a job").add_argument("id", type=int)
    logs = sub.add_parser("logs", help="print a job's log")
    logs.add_argument("id", type=int)
    logs.add_argument("--stream", default="stdout", choices=("stdout", "stderr", "visdom"))
    logs.add_argument("--follow", "-f", action="store_true")
    cli_datasets.add_parser(sub)
    export = sub.add_parser("export", help="export published weights as ONNX, TorchScript or an edge bundle")
    export.add_argument("--weights", required=True, help="the published weights' name")
    export.add_argument("--format", required=True, choices=tuple(EXPORTS))
    export.add_argument("-o", "--output", help="also download the file here")
    cli_deploy.add_parsers(sub)
    cli_nodes.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "hypes":
        return cmd_hypes(args)
    if args.command == "shutdown":
        return cmd_shutdown(args)
    if args.command == "node" and args.action == "join":
        return cli_nodes.cmd_join(args)
    if args.command == "token" and args.action == "create" and not args.name:
        p.error("token create needs a name")
    if args.command == "token" and args.action == "revoke" and not (args.name or "").isdigit():
        p.error("token revoke needs the token's id (see `cauchy token list`)")
    if args.command == "group" and args.action == "member" and not args.user:
        p.error("group member needs GROUP and USER")
    if args.command == "dataset" and args.action != "list" and not args.target:
        p.error(f"dataset {args.action} needs {'PATH' if args.action == 'upload' else 'NAME'}")
    if args.command == "dataset" and args.action == "register" and not args.path:
        p.error("dataset register needs NAME and PATH (a folder under CAUCHY_DATA_ROOTS on the server)")
    commands = {"login": cmd_login, "submit": cmd_submit, "list": cmd_list, "show": cmd_show, "stop": cmd_stop,
                "resume": cmd_resume, "logs": cmd_logs, "token": cmd_token, "user": cmd_user, "group": cmd_group,
                "dataset": cli_datasets.cmd_dataset, "export": cmd_export, "deploy": cli_deploy.cmd_deploy,
                "deployments": cli_deploy.cmd_deployments, "node": cli_nodes.cmd_node}
    url = args.url.rstrip("/")
    token = None if args.command == "login" else args.token or stored_tokens().get(url)
    return commands[args.command](args, Client(url, token))
