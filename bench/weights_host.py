"""Download throughput of a 200 MB weights file through nginx against the same file served by the
control service (``python -m services`` under waitress, the fallback without nginx), in one run.

Rounds alternate the two servers over 127.0.0.1; each download streams the whole file in 1 MiB
reads and checks its size. Prints a table; the last line is one JSON object (``ratio`` = nginx
median MB/s / service median MB/s).

    python bench/weights_host.py [--size-mb 200] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts/nginx")]

import frontdoor  # noqa: E402
from job_launch import ServiceProcess, free_port  # noqa: E402
from rounds import alternate  # noqa: E402

from services.weights_store import write_manifest  # noqa: E402

CHUNK = 1 << 20


def make_file(path: Path, size_mb: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(CHUNK))
    os.chmod(path, 0o644)


def download_mb_s(url: str, size: int) -> float:
    start = time.perf_counter()
    got = 0
    with requests.get(url, stream=True, timeout=120) as response:
        response.raise_for_status()
        for block in response.iter_content(CHUNK):
            got += len(block)
    elapsed = time.perf_counter() - start
    if got != size:
        raise SystemExit(f"{url}: got {got} bytes of {size}")
    return size / 2**20 / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-weights-") as tmp:
        home = Path(tmp) / "home"
        (home / "weights").mkdir(parents=True)
        weights = home / "weights" / "bench.pth"
        make_file(weights, args.size_mb)
        # A public entry: the front door and the service serve only files of entries the caller may read.
        write_manifest(home / "weights", [{"name": "bench", "file": "bench.pth", "owner": "admin", "visibility": "public"}])
        size = weights.stat().st_size
        service = ServiceProcess(home, visdom_ports="18290-18299")
        service_port, front_port = service.port, free_port()
        nginx = None
        try:
            nginx = frontdoor.start(frontdoor.FrontDoor("127.0.0.1", front_port, f"127.0.0.1:{service_port}", home))
            urls = {"nginx": f"http://127.0.0.1:{front_port}/weights/bench.pth",
                    "service": f"http://127.0.0.1:{service_port}/weights/bench.pth"}
            rates = alternate({name: partial(download_mb_s, url, size) for name, url in urls.items()}, args.rounds)
        finally:
            if nginx is not None:
                frontdoor.stop(nginx)
            service.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{args.size_mb} MB weights file, {args.rounds} rounds, MB/s (median, min-max)")
    for name, values in rates.items():
        print(f"  {name:8} {medians[name]:8.1f}   {min(values):.1f}-{max(values):.1f}")
    ratio = medians["nginx"] / medians["service"]
    print(f"  nginx / service: {ratio:.2f}x")
    print(json.dumps({"size_mb": args.size_mb, "rounds": args.rounds, "nginx_mb_s": round(medians["nginx"], 1),
                      "service_mb_s": round(medians["service"], 1), "ratio": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
