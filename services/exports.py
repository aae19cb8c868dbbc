"""Exports of published weights on the weights host: ``<name>.onnx``, ``<name>.torchscript.pt`` and the
edge bundle ``<name>.edge.zip``, each beside ``<name>.pth`` and recorded in its manifest entry's
``exports`` (file, sha256, size, ...), so nginx serves them after the same read check as the weights.

The model is rebuilt from the entry (the hypes and metadata a publish records) or else from its source job
(its ``hypes.json`` and the checkpoint's class names and metadata) and exported by ``python -m
services.exports`` in a child process (the service never imports
torch); the file is written under a temporary name and renamed, and the entry updated, under the weights
host's lock. An export of a format already there replaces it.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from cauchy.files import sha256_file
from cauchy.manifest import EXPORTS, export_file, find_entry, read_manifest
from services.config import REPO_ROOT
from services.weights_store import EXPORT_TIMEOUT_S, WeightsStoreError, export_error, locked, write_manifest

log = logging.getLogger("cauchy.exports")
EDGE_PREDICTOR = REPO_ROOT / "scripts" / "edge" / "predict.py"
EDGE_PACKAGES = ("onnxruntime", "numpy", "opencv-python-headless")  # all the edge predictor imports
EDGE_MODEL = "model.onnx"


def check_format(fmt: Any) -> str:
    if not isinstance(fmt, str) or fmt not in EXPORTS:
        raise WeightsStoreError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORTS)}", "format")
    return fmt


def edge_requirements() -> str:
    """``requirements.txt`` of the bundle: the edge predictor's packages at this repository's pins."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as fh:
        pins = tomllib.load(fh)["project"]["dependencies"]
    return "".join(f"{pin}\n" for pin in pins if pin.split("==")[0] in EDGE_PACKAGES)


def write_bundle(path: str | os.PathLike[str], onnx_file: str | os.PathLike[str], entry: dict[str, Any],
                 edge: dict[str, Any]) -> None:
    """The edge bundle: ``model.onnx``, ``manifest.json`` (the weights' entry and the edge settings),
    ``predict.py`` and ``requirements.txt``; unzipped, ``python predict.py IMAGES`` runs without Cauchy."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.write(onnx_file, EDGE_MODEL)
        bundle.writestr("manifest.json", json.dumps({"weights": entry, "edge": {**edge, "model": EDGE_MODEL}}, indent=1))
        bundle.write(EDGE_PREDICTOR, "predict.py")
        bundle.writestr("requirements.txt", edge_requirements())


def run_export(weights: Path, entry: dict[str, Any], run_dir: Path | None, fmt: str, out: str,
               python: str) -> dict[str, Any]:
    """``python -m services.exports`` in a child (the entry on its stdin): what it reports, or a
    WeightsStoreError with its error line (server paths cut to names relative to the weights host and
    the jobs' folder)."""
    done = subprocess.run([python, "-m", "services.exports", str(weights), str(run_dir or "-"), fmt, out],
                          input=json.dumps(entry), capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, cwd=REPO_ROOT)
    if done.returncode != 0:  # tracebacks name server paths: they go to the log
        log.error("exporting %s as %s failed:\n%s", weights.name, fmt, done.stderr.strip()[-4000:])
        reason = export_error(done.stderr, run_dir or weights, "the export failed (the service log has the details)")
        reason = reason.replace(str(weights.parent) + os.sep, "")
        raise WeightsStoreError(f"cannot export {weights.stem} as {fmt}: {reason}", "name", "not_exportable")
    return json.loads(done.stdout)


def export_weights(directory: Path, name: str, fmt: str, run_dir: Path | None,
                   python: str = sys.executable) -> dict[str, Any]:
    """Export the entry ``name`` as ``fmt`` (the edge bundle holds an ONNX export made for it) and record the
    file in the entry's ``exports``; returns the updated entry. The model is rebuilt from the entry's hypes
    and metadata, else from its source job's ``run_dir`` (``cauchy.export.load_published``)."""
    check_format(fmt)
    entry = find_entry(directory, name)
    if entry is None:
        raise WeightsStoreError(f"no weights named {name!r}", "name", "not_found")
    handles = [tempfile.mkstemp(dir=directory, prefix=".tmp-export-") for _ in range(2)]
    for fd, _ in handles:
        os.close(fd)
    (_, model_tmp), (_, bundle_tmp) = handles
    try:
        info = run_export(directory / entry["file"], entry, run_dir, "onnx" if fmt == "edge" else fmt, model_tmp, python)
        edge = info.pop("edge")
        tmp = model_tmp
        if fmt == "edge":
            write_bundle(bundle_tmp, model_tmp, entry, edge)
            tmp = bundle_tmp
        os.chmod(tmp, 0o644)
        record = {**info, "format": fmt, "file": export_file(name, fmt), "sha256": sha256_file(tmp),
                  "size": os.path.getsize(tmp), "created": time.time()}
        with locked(directory):
            entries = read_manifest(directory)
            current = next((e for e in entries if e["name"] == name), None)
            if current is None:
                raise WeightsStoreError(f"weights {name!r} were deleted during the export", "name", "not_found")
            os.replace(tmp, directory / record["file"])
            current["exports"] = {**current.get("exports", {}), fmt: record}
            write_manifest(directory, entries)
    finally:
        for _, path in handles:
            if os.path.exists(path):
                os.unlink(path)
    return current


def main(argv: list[str]) -> int:
    """``python -m services.exports WEIGHTS RUN_DIR|- FORMAT OUT`` with the manifest entry as JSON on
    stdin: what was written as JSON, or one ``error:`` line (exit code 2) for a model, hypes or file the
    export cannot take."""
    from cauchy.export import ExportError, export, load_published
    from cauchy.hypes import HypesError
    from cauchy.weights_only import UnsafeFileError

    weights, run_dir, fmt, out = argv
    try:
        print(json.dumps(export(load_published(weights, None if run_dir == "-" else run_dir, json.load(sys.stdin)),
                                fmt, out)))
    except (ExportError, HypesError, UnsafeFileError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
