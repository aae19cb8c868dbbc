"""Dynamic batching under load: 16 concurrent clients sending JPEGs to a deployed classifier and a
deployed detector on the CPU, each served by a replica with dynamic batching (``--max-batch 16``, wait
``--max-wait-ms``) and by the same server with ``max_batch=1``, side by side in one run.

Each side is one model-server process (``services.serving.model_server``, what a deployment's replica
runs), with ``--torch-threads`` (1: a replica holds one CPU slot). The models are untrained (their
weights do not change the work): a ResNet-18 classifier at 128x128 (10 classes) on 256x256 JPEGs, and
YOLOv3-small (``hypes/det/yolov3_small_shapes.json``, 128 px) on 320x240 JPEGs. Rounds alternate the
sides; a round is ``--seconds`` of 16 clients each posting one JPEG per request on a keep-alive
connection, and yields requests/s (and the latencies). Peak RSS is the server process's, sampled.
The last line is one JSON object; ``ratio`` is the classifier's batched over unbatched requests/s
(medians over the rounds; target >= 2), ``det_ratio`` the detector's, and ``<model>_ratio_per_round``
each round's (its two sides ran back to back, so on a machine whose load changes these vary less).

    python bench/serve_load.py [--rounds 3] [--seconds 20] [--clients 16] [--max-wait-ms 10]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from job_launch import free_port  # noqa: E402

from services.serving.batching import percentiles  # noqa: E402

MODELS = {
    # name: (hypes file, overrides, class names, JPEG size w x h)
    "cls": ("hypes/cls/image_classifier_resnet18_digits.json", [], [str(i) for i in range(10)], (64, 64)),
    "det": ("hypes/det/yolov3_small_shapes.json", [], ["circle", "square", "triangle", "star"], (320, 240)),
}


def make_weights(directory: Path) -> None:
    """A weights host with one entry per model: fresh weights and the hypes, as a publish writes them."""
    import torch

    from cauchy.build import build_method
    from cauchy.files import sha256_file
    from cauchy.hypes import load_hypes, resolve_hypes
    from services.weights_store import write_manifest

    entries = []
    for name, (hypes_file, overrides, classes, _) in MODELS.items():
        hypes = resolve_hypes(load_hypes(str(REPO / hypes_file)), overrides)
        torch.manual_seed(0)
        method = build_method({**hypes, "network": {**hypes["network"], "pretrained": None}}, len(classes))
        path = directory / f"{name}.pth"
        torch.save(method.model.state_dict(), path)
        entries.append({"name": name, "file": path.name, "sha256": sha256_file(path), "class_names": classes,
                        "hypes": hypes, "metadata": {}, "task": hypes["task"]})
    write_manifest(directory, entries)


def jpeg(size: tuple[int, int], seed: int) -> bytes:
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), (9, 9), 3)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


class Server:
    """One model-server process serving ``weights`` from ``directory``."""

    def __init__(self, directory: Path, weights: str, max_batch: int, max_wait_ms: float, torch_threads: int,
                 backend: str = "torch") -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.serving.model_server", "--name", weights, "--weights-dir", str(directory),
             "--weights", weights, "--port", str(self.port), "--max-batch", str(max_batch),
             "--max-wait-ms", str(max_wait_ms), "--torch-threads", str(torch_threads), "--backend", backend],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        self.peak_rss_mb = 0.0
        deadline = time.monotonic() + 600
        while self.get("/ready")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {weights} server did not become ready")
            time.sleep(0.5)

    def get(self, route: str) -> tuple[int, dict[str, Any]]:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            connection.request("GET", route)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        except (OSError, ValueError):
            return 0, {}

    def sample_rss(self) -> None:
        try:
            rss = psutil.Process(self.proc.pid).memory_info().rss / 2**20
        except psutil.Error:
            return
        self.peak_rss_mb = max(self.peak_rss_mb, rss)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def load_round(server: Server, images: list[bytes], clients: int, seconds: float) -> tuple[float, list[float]]:
    """``clients`` threads posting JPEGs for ``seconds``: requests/s and each request's latency (ms)."""
    latencies: list[float] = []
    done = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        mine: list[float] = []
        start.wait()
        i = index
        while time.monotonic() < stop_at[0]:
            began = time.monotonic()
            connection.request("POST", "/predict", body=images[i % len(images)],
                               headers={"Content-Type": "image/jpeg"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"predict answered {response.status}")
            mine.append((time.monotonic() - began) * 1000)
            i += clients
        connection.close()
        with lock:
            latencies.extend(mine)
            done[0] += len(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    stop_at[0] = began + seconds
    start.wait()
    while any(thread.is_alive() for thread in threads):
        server.sample_rss()
        time.sleep(0.25)
    return done[0] / (time.monotonic() - began), latencies


def arguments(description: str) -> argparse.Namespace:
    """The options both serving benchmarks take."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--models", default="cls,det")
    return parser.parse_args()


Sides = Callable[[Path, str, argparse.Namespace], dict[str, Server]]


def compare(args: argparse.Namespace, sides: Sides, prepare: Callable[[Path], None] = lambda directory: None) -> int:
    """For each model, two servers (``sides``: the measured one first) under alternating rounds of load;
    prints each side's figures and, last, one JSON line with every figure and ``ratio`` (the classifier's
    first side over its second; ``<model>_ratio`` for the others)."""
    started = time.monotonic()
    figures: dict[str, Any] = {"clients": args.clients, "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
                               "torch_threads": args.torch_threads, "load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="cauchy-serve-bench-") as tmp:
        directory = Path(tmp)
        make_weights(directory)
        prepare(directory)
        for model in args.models.split(","):
            size = MODELS[model][3]
            images = [jpeg(size, seed) for seed in range(32)]
            servers = sides(directory, model, args)
            try:
                rates: dict[str, list[float]] = {side: [] for side in servers}
                latencies: dict[str, list[float]] = {side: [] for side in servers}
                for server in servers.values():  # warm-up
                    load_round(server, images, args.clients, min(5.0, args.seconds))
                for _ in range(args.rounds):
                    for side, server in servers.items():
                        rate, seen = load_round(server, images, args.clients, args.seconds)
                        rates[side].append(rate)
                        latencies[side] += seen
                print(f"{model} ({size[0]}x{size[1]} JPEGs, {args.clients} clients):")
                for side, server in servers.items():
                    metrics = server.get("/metrics")[1]
                    lat = percentiles(latencies[side])
                    print(f"  {side:12s} median {statistics.median(rates[side]):7.2f} req/s   rounds: "
                          + " ".join(f"{r:.2f}" for r in rates[side])
                          + f"   p50 {lat['p50']} ms p99 {lat['p99']} ms   mean batch {metrics.get('mean_batch')}"
                          f"   peak RSS {server.peak_rss_mb:.0f} MB", flush=True)
                    figures[f"{model}_{side}_req_per_s"] = round(statistics.median(rates[side]), 2)
                    figures[f"{model}_{side}_rounds"] = [round(r, 2) for r in rates[side]]
                    figures[f"{model}_{side}_p50_ms"], figures[f"{model}_{side}_p99_ms"] = lat["p50"], lat["p99"]
                    figures[f"{model}_{side}_mean_batch"] = metrics.get("mean_batch")
                    figures[f"{model}_{side}_peak_rss_mb"] = round(server.peak_rss_mb, 1)
                first, second = list(servers)
                ratio = figures[f"{model}_{first}_req_per_s"] / figures[f"{model}_{second}_req_per_s"]
                figures["ratio" if model == "cls" else f"{model}_ratio"] = round(ratio, 3)
                # Each round's pair ran back to back, under about the same load: their ratios vary less.
                pairs = [a / b for a, b in zip(rates[first], rates[second])]
                figures[f"{model}_ratio_per_round"] = [round(r, 3) for r in pairs]
                print(f"  ratio {first}/{second}: {ratio:.3f} (per round: " + " ".join(f"{r:.2f}" for r in pairs) + ")",
                      flush=True)
            finally:
                for server in servers.values():
                    server.close()
    figures["run_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures))
    return 0


def batched_and_not(directory: Path, model: str, args: argparse.Namespace) -> dict[str, Server]:
    return {"batched": Server(directory, model, args.max_batch, args.max_wait_ms, args.torch_threads),
            "max_batch_1": Server(directory, model, 1, 0.0, args.torch_threads)}


if __name__ == "__main__":
    raise SystemExit(compare(arguments(__doc__.splitlines()[0]), batched_and_not))
