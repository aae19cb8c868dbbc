"""One job's Visdom server, started offline with the bundled assets.

``python -m visdom.server`` downloads its assets from CDNs first and crashes offline, imports
torch (+1 s, +180 MB) and restarts itself when any imported file changes. This entry point
avoids all three (see /work/shared/notes/visdom.md) and prints ``VISDOM_READY port=P`` once the
port is bound, which ``start_visdom`` waits for.

    python -m services.visdom_server --port P --base-url /visdom/<job> --env-path DIR [--static-dir D]
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cauchy.exitcodes import BAD_INPUT
from services.config import REPO_ROOT
from services.jobs.environment import JOB_UMASK, scrubbed_environment
from services.private import open_private

READY = "VISDOM_READY"
VISDOM_VERSION = "0.2.4"
DEFAULT_STATIC_DIR = os.path.join(REPO_ROOT, "services", "visdom_static")


class VisdomStartError(RuntimeError):
    """The Visdom process exited or stayed silent before it was ready."""


class VisdomAssetsMissing(RuntimeError):
    """The static directory was never built; the page would be blank."""


def normalize_base_url(base_url: str) -> str:
    """Visdom needs "" for the root and "/prefix" without a trailing slash ("/" gives 500s)."""
    stripped = base_url.strip("/")
    return f"/{stripped}" if stripped else ""


def check_static_dir(static_dir: str) -> None:
    """Fail early, naming the fix, rather than serve a blank page."""
    built = os.path.join(static_dir, "version.built")
    try:
        with open(built, encoding="utf-8") as fh:
            version = fh.read().strip()
    except FileNotFoundError:
        version = None
    if version != VISDOM_VERSION:
        raise VisdomAssetsMissing(
            f"Visdom assets missing or incomplete in {static_dir} (no {built} = {VISDOM_VERSION}): "
            "run `make visdom-assets`"
        )


def serve(port: int, base_url: str, env_path: str, static_dir: str) -> None:
    """Run the server in this process until SIGTERM; raises OSError when the port is taken."""
    sys.modules["torch"] = None  # visdom imports torch when it can; None makes that an ImportError
    import visdom.server.app as visdom_app
    from visdom.server.run_server import start_server

    # Visdom forces tornado's debug mode; keep only what it is for: no reload, no re-hashing of
    # 6 MB of assets on every page load, no tracebacks sent to browsers.
    visdom_app.tornado_settings.update(
        static_path=static_dir, template_path=static_dir, autoreload=False,
        static_hash_cache=True, serve_traceback=False,
    )
    refuse_env_creation_from_browsers()
    add_embedding_style(visdom_app.Application)
    os.makedirs(env_path, exist_ok=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)

    def ready(bound_port: int) -> None:
        print(f"{READY} port={bound_port}", flush=True)

    start_server(
        port=port,
        base_url=normalize_base_url(base_url),
        env_path=env_path,
        bind_local=True,
        readonly=True,  # browsers only watch: socket commands (close pane, save or delete env) are ignored
        print_func=ready,
    )


# Served as Visdom's user style sheet (``user/style.css``): the page embeds the charts in a frame about
# 1,000 pixels wide, where Visdom's top bar wrapped onto a second line and its filter box and read-only
# badge then covered the top-right chart. The bar stays one line (scrolling sideways if it must).
EMBEDDING_CSS = """
.navbar-form { display: flex; flex-wrap: nowrap; align-items: center; overflow-x: auto; white-space: nowrap; }
.navbar-form > * { flex: 0 0 auto; }
.navbar-form .input-group.navbar-btn { width: 12em; }
"""


def add_embedding_style(application: Any) -> None:
    """Appends :data:`EMBEDDING_CSS` to the user style sheet Visdom builds at start."""
    load = application.load_user_settings

    def load_user_settings(self: Any) -> dict[str, Any]:
        settings = load(self)
        settings["user_css"] = settings.get("user_css", "") + EMBEDDING_CSS
        return settings

    application.load_user_settings = load_user_settings


BROWSER_HEADER = "X-Cauchy-Browser"  # set by nginx on every request it proxies to a Visdom


def refuse_env_creation_from_browsers() -> None:
    """``POST env/<eid>`` with ``{"eid": ...}`` creates an env every viewer then sees. The task creates its
    env that way (directly on 127.0.0.1); a browser's page only loads one (``{"sid": ...}``), so a proxied
    request that would create an env is a 403."""
    from visdom.server.handlers import web_handlers

    load = web_handlers.EnvHandler.post

    def post(handler: Any, args: str) -> Any:
        if handler.request.headers.get(BROWSER_HEADER):
            try:
                body = json.loads(handler.request.body or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict) or "eid" in body:
                handler.set_status(403)
                return handler.finish({"error": "viewers may load an env, not create one"})
        return load(handler, args)

    web_handlers.EnvHandler.post = post


class _UserStyleFilter(logging.Filter):
    """Drops the error tornado logs on every page load while hashing ``../user/style.css``: the
    page links it on purpose (Visdom's user-settings handler serves it), it is no file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith("user/style.css'")


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base-url", default="", help='"" for the root, or /visdom/<job>')
    parser.add_argument("--env-path", required=True, help="this job's own env directory")
    parser.add_argument("--static-dir", default=DEFAULT_STATIC_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.general").addFilter(_UserStyleFilter())
    try:
        check_static_dir(args.static_dir)
        serve(args.port, args.base_url, os.path.abspath(args.env_path), os.path.abspath(args.static_dir))
    except VisdomAssetsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"error: port {args.port} is already in use on 127.0.0.1", file=sys.stderr)
        return BAD_INPUT
    return 0


def start_visdom(
    port: int,
    base_url: str,
    env_path: str,
    log_path: str,
    *,
    static_dir: str = DEFAULT_STATIC_DIR,
    timeout: float = 30.0,
) -> subprocess.Popen:
    """Start the server in its own process group and return once it printed its ready line.

    Output goes to ``log_path`` (not a pipe) so the server outlives a restart of the caller.
    """
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    cmd = [
        sys.executable, "-m", "services.visdom_server", "--port", str(port),
        "--base-url", base_url, "--env-path", env_path, "--static-dir", static_dir,
    ]
    with open_private(Path(log_path)) as log:  # a job's viewer gets a job's environment and umask
        offset = log.tell()
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=scrubbed_environment(os.environ), umask=JOB_UMASK, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    with open(log_path, "rb") as log:
        log.seek(offset)
        seen = b""
        while True:
            seen += log.read()
            if f"{READY} port={port}".encode() in seen:
                return proc
            if proc.poll() is not None:
                raise VisdomStartError(
                    f"visdom on port {port} exited with code {proc.returncode} before it was ready: "
                    f"{seen.decode(errors='replace').strip()[-2000:]}"
                )
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise VisdomStartError(f"visdom on port {port} not ready after {timeout:.0f} s; log: {log_path}")
            time.sleep(0.02)


def is_visdom_up(port: int, base_url: str = "", timeout: float = 2.0) -> bool:
    """True when the server answers its page with 200."""
    url = f"http://127.0.0.1:{port}{normalize_base_url(base_url)}/"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


if __name__ == "__main__":
    sys.exit(main())
