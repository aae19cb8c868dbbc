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
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from serve_load import MODELS, Server, jpeg, load_round, make_weights  # noqa: E402

from services.serving.batching import percentiles  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--models", default="cls,det")
    args = parser.parse_args()
    started = time.monotonic()
    figures: dict[str, Any] = {"clients": args.clients, "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
                               "threads": args.torch_threads, "load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="cauchy-serve-backends-") as tmp:
        directory = Path(tmp)
        make_weights(directory)
        add_onnx_exports(directory)
        for model in args.models.split(","):
            size = MODELS[model][3]
            images = [jpeg(size, seed) for seed in range(32)]
            servers = {side: Server(directory, model, args.max_batch, args.max_wait_ms, args.torch_threads, side)
                       for side in SIDES}
            try:
                rates: dict[str, list[float]] = {side: [] for side in SIDES}
                latencies: dict[str, list[float]] = {side: [] for side in SIDES}
                for server in servers.values():  # warm-up
                    load_round(server, images, args.clients, min(5.0, args.seconds))
                for _ in range(args.rounds):
                    for side, server in servers.items():
                        rate, seen = load_round(server, images, args.clients, args.seconds)
                        rates[side].append(rate)
                        latencies[side] += seen
                print(f"{model} ({size[0]}x{size[1]} JPEGs, {args.clients} clients):")
                for side, server in servers.items():
                    lat = percentiles(latencies[side])
                    median = statistics.median(rates[side])
                    print(f"  {side:12s} median {median:7.2f} req/s   rounds: " + " ".join(f"{r:.2f}" for r in rates[side])
                          + f"   p50 {lat['p50']} ms p99 {lat['p99']} ms   peak RSS {server.peak_rss_mb:.0f} MB", flush=True)
                    figures[f"{model}_{side}_req_per_s"] = round(median, 2)
                    figures[f"{model}_{side}_rounds"] = [round(r, 2) for r in rates[side]]
                    figures[f"{model}_{side}_p50_ms"], figures[f"{model}_{side}_p99_ms"] = lat["p50"], lat["p99"]
                    figures[f"{model}_{side}_peak_rss_mb"] = round(server.peak_rss_mb, 1)
                ratio = figures[f"{model}_onnxruntime_req_per_s"] / figures[f"{model}_torch_req_per_s"]
                pairs = [o / t for o, t in zip(rates["onnxruntime"], rates["torch"])]
                figures["ratio" if model == "cls" else f"{model}_ratio"] = round(ratio, 3)
                figures[f"{model}_ratio_per_round"] = [round(r, 3) for r in pairs]
                print(f"  ratio onnxruntime/torch: {ratio:.3f} (per round: " + " ".join(f"{r:.2f}" for r in pairs) + ")",
                      flush=True)
            finally:
                for server in servers.values():
                    server.close()
    figures["run_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
