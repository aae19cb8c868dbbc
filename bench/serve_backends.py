"""ONNX Runtime against PyTorch behind the same deployment: 16 concurrent clients sending JPEGs to a
classifier and a detector on the CPU, one model server with ``--backend onnxruntime`` (the weights'
ONNX export, ``cauchy/export.py``) and one with ``--backend torch``, both batching dynamically
(``--max-batch`` 16, ``--max-wait-ms`` 10, one torch/ONNX Runtime thread), side by side in one run.

The models, images, clients and rounds are ``bench/serve_load.py``'s. The last line is one JSON object;
``ratio`` is the classifier's onnxruntime over torch requests/s (medians over the rounds), ``det_ratio``
the detector's, ``<model>_ratio_per_round`` each round's.

    python bench/serve_backends.py [--rounds 3] [--seconds 20] [--clients 16]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from serve_load import Server, arguments, compare  # noqa: E402

SIDES = ("onnxruntime", "torch")


def add_onnx_exports(directory: Path) -> None:
    """Each entry's ONNX export beside its weights, recorded in the manifest as a publish's export records it."""
    from cauchy.export import Published, export
    from cauchy.files import sha256_file
    from cauchy.inference import load_predictor
    from cauchy.manifest import read_manifest
    from services.weights_store import write_manifest

    entries = read_manifest(directory)
    for entry in entries:
        predictor = load_predictor(entry, str(directory))
        path = directory / f"{entry['name']}.onnx"
        export(Published(entry["hypes"], predictor.method, entry["class_names"], entry["metadata"]), "onnx", str(path))
        entry["exports"] = {"onnx": {"format": "onnx", "file": path.name, "sha256": sha256_file(path)}}
    write_manifest(directory, entries)


def backends(directory: Path, model: str, args: argparse.Namespace) -> dict[str, Server]:
    return {side: Server(directory, model, args.max_batch, args.max_wait_ms, args.torch_threads, side) for side in SIDES}


if __name__ == "__main__":
    raise SystemExit(compare(arguments(__doc__.splitlines()[0]), backends, add_onnx_exports))
