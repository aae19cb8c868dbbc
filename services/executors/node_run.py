"""What a Ray job runs on its node: ``python -m services.executors.node_run`` (the Ray executor's entrypoint).

It runs the job's task like ``wrap.py`` does locally (the exit status recorded, SIGTERM passed on; the task
dies with it) with the node's own Python and checkout, in a scrubbed environment. Without a shared filesystem it works in a
node-local directory: it first downloads the hypes (and, for a resumed job, the checkpoint and the metrics it
continues), then mirrors what the task writes to the service with the job's token (``MIRROR_EVERY_S``):
logs and ``metrics.jsonl`` appended, checkpoints and results uploaded whole and renamed into place by the
service, ``exit.json`` last. With ``CAUCHY_SHARED_HOME`` it works in the job directory itself.

The spec comes in ``CAUCHY_NODE_SPEC`` (JSON, written by ``ray_cluster.RayExecutor``), the token in
``CAUCHY_JOB_TOKEN``. A job spanning nodes (the spec has a ``group``) is handed to ``node_group``, which runs
this same ``run`` once per node rank; a rank other than 0 sends its own files (its logs, its exit status) under
``nodes/<rank>/`` of the job directory (``RANKS_DIR``). Imports stay light (no service, no torch): it starts on
every job.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cauchy import rundir
from cauchy.lifeline import die_with_parent
from services.jobs import files
from services.jobs.environment import JOB_UMASK, scrubbed_environment
from services.jobs.wrap import run_recorded
from services.private import open_private

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SPEC_VAR, TOKEN_VAR = "CAUCHY_NODE_SPEC", "CAUCHY_JOB_TOKEN"
TOKEN_HEADER = "X-Cauchy-Job-Token"
JOB_DIR = "{job_dir}"  # the placeholder in the task's arguments for the directory it runs in
APPENDED = (files.LOGS["stdout"], files.LOGS["stderr"], rundir.METRICS)  # streamed as they grow
RANKS_DIR = "nodes"  # node rank r > 0 of a job spanning nodes sends its files under nodes/<r>/
MIRROR_EVERY_S = 1.0
CHUNK = 8 * 1024 * 1024  # the largest request body (the service's and nginx's limits are above it)
TIMEOUT_S = 60.0


def rank_prefix(rank: int) -> str:
    """Where a node rank's files go in the job directory: rank 0's where a one-node job's go."""
    return f"{RANKS_DIR}/{rank}/" if rank else ""


def appended(path: str) -> bool:
    """Whether the service appends what a node sends to ``path`` (a log or the metrics, of any node rank)."""
    parts = path.split("/")
    return parts[-1] in APPENDED and (len(parts) == 1 or len(parts) == 3 and parts[0] == RANKS_DIR
                                      and parts[1].isdigit())


def node_route(service: str, job_id: int, name: str) -> str:
    """The service's URL of one file of a job's directory, as a node reads and writes it."""
    return f"{service}/api/v1/jobs/{job_id}/node/files/{urllib.parse.quote(name)}"


class Link:
    """The job's side of ``/api/v1/jobs/<id>/node/files/<name>``: downloads, appends and uploads (what it writes
    goes under ``prefix``: a node rank's own place; what it reads is the job's)."""

    def __init__(self, service: str, job_id: int, token: str, prefix: str = "") -> None:
        self.service, self.job_id, self.token, self.prefix = service, job_id, token, prefix

    def _request(self, name: str, method: str, query: dict[str, Any] | None = None,
                 body: bytes | None = None) -> tuple[int, bytes]:
        url = node_route(self.service, self.job_id, name) + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, data=body, method=method, headers={TOKEN_HEADER: self.token})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def download(self, name: str, target: Path) -> bool:
        """The service's copy of ``name`` into ``target`` (False when it has none)."""
        status, body = self._request(name, "GET")
        if status == 404:
            return False
        if status != 200:
            raise OSError(f"downloading {name}: HTTP {status} {body[:200]!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        return True

    def write(self, name: str, data: bytes, offset: int, done: bool) -> int | None:
        """Write ``data`` at ``offset`` of the service's ``name``; None, or the size the service has when it
        does not match ``offset`` (the caller resends from there)."""
        status, body = self._request(self.prefix + name, "PUT", {"offset": offset, "done": int(done)}, data)
        if status == 409:
            return int(json.loads(body)["size"])
        if status != 200:
            raise OSError(f"uploading {name}: HTTP {status} {body[:200]!r}")
        return None


class Mirror:
    """Sends what the task writes in ``work`` to the service: appended files from where the last send ended
    (from 0 again when the task replaced the file), other files whole once they changed."""

    def __init__(self, link: Link, work: Path) -> None:
        self.link, self.work = link, work
        self.sent: dict[str, tuple[int, int]] = {}  # appended file -> (inode, bytes sent)
        self.uploaded: dict[str, tuple[int, int]] = {}  # other file -> (size, mtime_ns) sent
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cauchy-mirror", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then send what is left."""
        self._quit.set()
        self._thread.join()
        self.sync()

    def _loop(self) -> None:
        while not self._quit.wait(MIRROR_EVERY_S):
            try:
                self.sync()
            except OSError as exc:  # the service is restarting or unreachable: the next pass resends
                print(f"node_run: mirror: {exc}", file=sys.stderr, flush=True)

    def sync(self) -> None:
        for name in APPENDED:
            self._append(name)
        for path in sorted(self.work.rglob("*")):
            name = path.relative_to(self.work).as_posix()
            if path.is_file() and name not in APPENDED and name not in (rundir.HYPES, files.EXIT_FILE) \
                    and not name.endswith(".tmp") and not path.name.startswith(".tmp-"):  # half-written
                self._upload(name, path)

    def _append(self, name: str) -> None:
        try:
            with open(self.work / name, "rb") as fh:
                stat = os.fstat(fh.fileno())
                inode, offset = self.sent.get(name, (stat.st_ino, -1))
                if inode != stat.st_ino or stat.st_size < offset:
                    offset = -1  # replaced (a resume drops the events past its checkpoint): send it whole again
                if offset == stat.st_size:
                    return
                offset = max(offset, 0)
                while True:
                    fh.seek(offset)
                    data = fh.read(CHUNK)
                    have = self.link.write(name, data, offset, done=False)
                    offset = have if have is not None else offset + len(data)
                    self.sent[name] = (stat.st_ino, offset)
                    if offset >= stat.st_size:
                        break
        except FileNotFoundError:
            pass

    def _upload(self, name: str, path: Path) -> None:
        try:
            stat = path.stat()
            if self.uploaded.get(name) == (stat.st_size, stat.st_mtime_ns):
                return
            with open(path, "rb") as fh:
                offset = 0
                while True:
                    data = fh.read(CHUNK)
                    done = len(data) < CHUNK
                    self.link.write(name, data, offset, done=done)
                    offset += len(data)
                    if done:
                        break
        except FileNotFoundError:  # removed meanwhile (an old iter_*.pth): nothing to send
            return
        self.uploaded[name] = (stat.st_size, stat.st_mtime_ns)


def run(spec: dict[str, Any], token: str) -> int:
    """Run the job's task as ``spec`` says; the exit code to end with."""
    link = None if spec.get("shared_dir") else Link(spec["service"], spec["job"], token, spec.get("prefix", ""))
    if link is None:
        work = Path(spec["shared_dir"])
        work.mkdir(mode=0o700, parents=True, exist_ok=True)  # a node rank's own folder of the job directory
    else:
        work = Path(tempfile.mkdtemp(prefix=f"cauchy-job{spec['job']}-"))
        if not link.download(rundir.HYPES, work / rundir.HYPES):
            raise OSError("the service has no hypes for this job")
        for name in spec.get("download", []):
            link.download(name, work / name)
    argv = [sys.executable, *spec["task"], *(arg.replace(JOB_DIR, str(work)) for arg in spec["args"])]
    env = scrubbed_environment(os.environ, **spec.get("env", {}))
    mirror = Mirror(link, work) if link is not None else None
    try:
        with open_private(work / files.LOGS["stdout"]) as out, open_private(work / files.LOGS["stderr"]) as err:
            if spec.get("banner"):  # which node rank this is, and where the ranks meet
                out.write(f"node_run: {spec['banner']}\n".encode())
                out.flush()
            if mirror is not None:
                mirror.start()
            code = run_recorded(argv, str(work / files.EXIT_FILE), cwd=REPO_ROOT, env=env, umask=JOB_UMASK,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, preexec_fn=die_with_parent)
        if mirror is not None:
            try:
                mirror.stop()
                link.write(files.EXIT_FILE, (work / files.EXIT_FILE).read_bytes(), 0, done=True)
            except OSError as exc:  # the service is away: Ray keeps the task's exit code (the driver's)
                print(f"node_run: the last sync failed: {exc}", file=sys.stderr, flush=True)
    finally:
        if link is not None:
            shutil.rmtree(work, ignore_errors=True)
    return code


def main() -> int:
    spec = json.loads(os.environ[SPEC_VAR])
    if spec.get("group"):
        from services.executors.node_group import run_group

        return run_group(spec, os.environ.get(TOKEN_VAR, ""))
    return run(spec, os.environ.get(TOKEN_VAR, ""))


if __name__ == "__main__":
    sys.exit(main())
