"""The weights host's directory, ``$CAUCHY_HOME/weights/``: weight files and ``manifest.json``.

nginx serves the directory as static files; this module is the only writer. A publish copies a
job's checkpoint as a weights-only state dict (``python -m services.weights_store export``, run as a
child so the service never imports torch), then adds the manifest entry: both files are written to
a temporary name and renamed, under a lock, so readers see the old manifest or the new one, never
half of either, and never an entry whose file is missing.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cauchy.files import atomic_write, sha256_file
from cauchy.manifest import MANIFEST, NAME_RE, find_entry, read_manifest
from cauchy.visualizer import read_events
from services.auth import access
from services.config import REPO_ROOT

EXPORT_TIMEOUT_S = 300
log = logging.getLogger("cauchy.weights_store")


class WeightsStoreError(ValueError):
    """A bad name, a name already taken, or a checkpoint that cannot be exported."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.field, self.code = field, code


def weights_dir(home: Path) -> Path:
    return home / "weights"


def ensure_manifest(directory: Path) -> None:
    """An empty manifest for a new host, so ``/weights/`` answers ``{"weights": []}`` rather than 403."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / MANIFEST).exists():
        with locked(directory):
            if not (directory / MANIFEST).exists():
                atomic_write(directory / MANIFEST, lambda fh: fh.write(b'{"weights": []}'), mode=0o644)


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise WeightsStoreError("expected 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit",
                                "name")
    return name


def describe(hypes: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """What a user picks weights by, from the job's resolved hypes and its checkpoint's class names."""
    return {"task": hypes.get("task"), "architecture": hypes.get("network", {}).get("model_name"),
            "num_classes": len(class_names), "class_names": class_names,
            "input_size": hypes.get("train", {}).get("data_transformer", {}).get("input_size")}


def final_metrics(metrics_jsonl: Path) -> dict[str, float]:
    """The last value of each validation or test metric of a run: what its weights are published with."""
    try:
        events = read_events(str(metrics_jsonl))
    except FileNotFoundError:
        return {}
    return {event["name"]: event["value"] for event in events if event.get("phase") in ("val", "test")}


def _taken(directory: Path, name: str) -> WeightsStoreError | None:
    if find_entry(directory, name) is not None:
        return WeightsStoreError(f"weights named {name!r} already exist", "name", "exists")
    return None


def publish(directory: Path, name: str, checkpoint: Path, *, hypes: dict[str, Any], metrics: dict[str, float],
            source_job: int | None, owner: str | None = None, visibility: str = access.WEIGHTS_DEFAULT,
            python: str = sys.executable) -> dict[str, Any]:
    """Export ``checkpoint`` as ``<name>.pth`` and add its manifest entry; the name must be new.

    The export (seconds: a child imports torch) runs outside the lock; the name is checked again
    under it, just before the rename and the manifest write.
    """
    check_name(name)
    directory.mkdir(parents=True, exist_ok=True)
    if error := _taken(directory, name):
        raise error
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pth")
    os.close(fd)
    try:
        done = subprocess.run([python, "-m", "services.weights_store", str(checkpoint), tmp], capture_output=True,
                              text=True, timeout=EXPORT_TIMEOUT_S, cwd=REPO_ROOT)
        if done.returncode != 0:  # the child's traceback names server paths: it goes to the log, not the client
            log.error("exporting %s failed:\n%s", checkpoint, done.stderr.strip()[-4000:])
            raise WeightsStoreError(f"cannot export {checkpoint.name}: {export_error(done.stderr, checkpoint)}",
                                    "checkpoint", "unreadable_checkpoint")
        os.chmod(tmp, 0o644)
        entry = {"name": name, "file": f"{name}.pth", **describe(hypes, json.loads(done.stdout)["class_names"]),
                 "sha256": sha256_file(Path(tmp)), "size": os.path.getsize(tmp), "metrics": metrics,
                 "source_job": source_job, "created": time.time(), "owner": owner, "visibility": visibility}
        with locked(directory):
            if error := _taken(directory, name):
                raise error
            os.replace(tmp, directory / entry["file"])
            write_manifest(directory, [*read_manifest(directory), entry])
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return entry


def write_manifest(directory: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the manifest (the caller holds the lock); nginx workers read it, so it is 0644."""
    atomic_write(directory / MANIFEST, lambda fh: fh.write(json.dumps({"weights": entries}, indent=1).encode()),
                 mode=0o644)


def set_visibility(directory: Path, name: str, visibility: str) -> dict[str, Any] | None:
    """Share the entry ``name`` as ``visibility``; returns the new entry, or None when there is none."""
    with locked(directory):
        entries = read_manifest(directory)
        found = next((entry for entry in entries if entry["name"] == name), None)
        if found is not None:
            found["visibility"] = visibility
            write_manifest(directory, entries)
        return found


def adopt_unowned(directory: Path, owner: str) -> int:
    """Give entries published before users existed (no owner) to ``owner``, public; returns how many."""
    with locked(directory):
        entries = read_manifest(directory)
        unowned = [entry for entry in entries if not entry.get("owner")]
        for entry in unowned:
            entry["owner"], entry["visibility"] = owner, entry.get("visibility") or access.WEIGHTS_DEFAULT
        if unowned:
            write_manifest(directory, entries)
        return len(unowned)


def export_error(stderr: str, checkpoint: Path,
                 fallback: str = "it is not a readable checkpoint (the service log has the details)") -> str:
    """What a client may read of a failed export: the export's own ``error:`` line with the checkpoint's
    server path cut to its name, never a traceback; without such a line, ``fallback``."""
    reason = next((line for line in reversed(stderr.splitlines()) if line.startswith("error: ")), None)
    if reason is None:
        return fallback
    return reason.replace(str(checkpoint), checkpoint.name).replace(str(checkpoint.parent) + os.sep, "")[:500]


def export(checkpoint: str, out: str) -> dict[str, Any]:
    """Write the model's state dict alone (loadable with ``weights_only=True``); return its class names.
    The checkpoint is read weights-only too: a file with code in it is refused (``UnsafeFileError``)."""
    import torch

    from cauchy.weights_only import load_weights_only

    state = load_weights_only(checkpoint, "checkpoint")
    model = state["model"] if isinstance(state, dict) and isinstance(state.get("model"), dict) else state
    torch.save(model, out)
    return {"class_names": list(state.get("class_names") or []) if isinstance(state, dict) else []}


def main(argv: list[str]) -> int:
    """``python -m services.weights_store CHECKPOINT OUT``: the class names as JSON, or one ``error:`` line."""
    from cauchy.weights_only import UnsafeFileError

    try:
        print(json.dumps(export(argv[0], argv[1])))
    except (UnsafeFileError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
