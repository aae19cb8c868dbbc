"""The job directory ``$CAUCHY_HOME/jobs/<id>/`` and incremental reads of what the task writes there.

The job directory is the task's run directory: the names the task writes are in ``cauchy.rundir``;
this module adds the service's own (logs, exit status, Visdom env)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from cauchy.files import atomic_write
from cauchy.rundir import METRICS

LOGS = {"stdout": "stdout.log", "stderr": "stderr.log", "visdom": "visdom.log"}
EXIT_FILE = "exit.json"
# An exit status under this key (instead of exit_code and signal) says the task vanished with a machine: the
# supervisor marks the job lost with its last checkpoint, and requeues it when it is preemptible.
LOST_KEY = "lost"
RAY_RUN = "ray_run.json"  # the Ray executor's record of the job's current run (submission id, node)
VISDOM_ENV_DIR = "visdom"
DEFAULT_TAIL = 64 * 1024
MAX_CHUNK = 1024 * 1024
MAX_METRICS_PAGE = 100_000  # events per metrics request


def job_dir(jobs_dir: Path, job_id: int) -> Path:
    return jobs_dir / str(job_id)


def disk_usage(directory: Path) -> int:
    """Bytes the files under ``directory`` take on disk: allocated blocks (a sparse file counts what it
    uses), each file once however many hard links name it (``best.pth`` and ``latest.pth`` often share one)."""
    seen: set[int] = set()
    total = 0
    pending = [str(directory)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed while we looked (a temporary checkpoint renamed)
                continue
            if stat.st_ino not in seen:
                seen.add(stat.st_ino)
                total += stat.st_blocks * 512
    return total


def copy_history(source: Path, target: Path) -> None:
    """A resumed job starts with the metrics of the job it continues (``metrics.jsonl``, copied whole):
    its page and charts show the training run's whole history. The task drops the events past the
    checkpoint it resumes from (``cauchy.visualizer.build_sinks``) before appending its own."""
    try:
        shutil.copyfile(source / METRICS, target / METRICS)
    except FileNotFoundError:
        pass


def read_json(path: Path) -> Any:
    """A JSON file of the job directory, or None when it is absent or not (yet) whole."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(path: Path, value: Any) -> None:
    """A JSON file of the service's, written atomically and private (0600)."""
    atomic_write(path, lambda fh: fh.write(json.dumps(value).encode("utf-8")), 0o600)


def clear_exit_status(directory: Path) -> None:
    """Remove a previous run's record before the job runs again (after a preemption), so a restart of the
    service never reads it as the new run's end."""
    (directory / EXIT_FILE).unlink(missing_ok=True)


def read_exit_status(directory: Path) -> dict[str, Any] | None:
    """What ``wrap.py`` wrote when the task ended, or None if it never got to write it."""
    return read_json(directory / EXIT_FILE)


def read_chunk(path: Path, offset: int | None, limit: int = MAX_CHUNK) -> dict[str, Any]:
    """Bytes of a log from ``offset`` (or its last 64 KiB); ``next_offset`` continues from there."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    start = max(0, size - DEFAULT_TAIL) if offset is None else min(offset, size)
    data = b""
    if size > start:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(min(limit, MAX_CHUNK))
    return {"offset": start, "next_offset": start + len(data), "size": size,
            "text": data.decode("utf-8", "replace")}


class CursorError(ValueError):
    """A ``since`` cursor that is not the start of a line (only 0 and returned ``next`` values are)."""


def read_metrics(path: Path, since: int, limit: int) -> dict[str, Any]:
    """Whole ``metrics.jsonl`` lines from byte ``since``; ``next`` is where the next call starts.

    A line still being written (no newline yet) is left for the next call.
    """
    events: list[dict[str, Any]] = []
    position = since
    try:
        with open(path, "rb") as fh:
            if since:
                fh.seek(since - 1)
                if fh.read(1) != b"\n":
                    raise CursorError(f"byte {since} is not the start of a line of {path.name}: pass 0 or a "
                                      "returned next")
            for line in fh:
                if not line.endswith(b"\n") or len(events) >= limit:
                    break
                position += len(line)
                if line.strip():
                    events.append(json.loads(line))
    except FileNotFoundError:
        pass
    return {"events": events, "next": position}


def list_artifacts(directory: Path) -> list[dict[str, Any]]:
    """Checkpoints, results, predictions, hypes, metrics and logs (the Visdom env directory is left out)."""
    items = []
    for root, dirs, files in os.walk(directory):
        rel_root = Path(root).relative_to(directory)
        dirs[:] = sorted(d for d in dirs if not (rel_root == Path(".") and d == VISDOM_ENV_DIR))
        for name in sorted(files):
            path = Path(root) / name
            if name.endswith(".tmp") or name.startswith("."):
                continue
            stat = path.stat()
            items.append({"path": str(rel_root / name) if rel_root != Path(".") else name,
                          "size": stat.st_size, "modified": stat.st_mtime})
    return items
