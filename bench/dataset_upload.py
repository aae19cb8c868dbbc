"""A dataset archive through nginx to ``ready``: upload MB/s against ``cp`` of the same file on the same disk,
and the control service's peak memory (RSS) while it arrives, unpacks and is inspected, in one run.

The archive is an image folder (train/val, 4 classes) of PNG noise images, zipped stored as
``cauchy dataset upload`` zips a folder, in a temporary folder beside the service's home. Rounds
alternate ``cp`` of the archive and an upload of it with the CLI's own code (32 MiB chunks, as
``cauchy dataset upload`` sends them) through nginx, each upload a new version that is then
unpacked and inspected (``cauchy.datasets.tools.inspect_dataset``) until it is ready. The service
(``python -m services``) is sampled every 50 ms for its RSS; the worker and inspection processes it
starts are sampled apart, every 0.5 s. Time is wall-clock; the load average is printed with the figures. The last
line is one JSON object (``ratio`` = upload median MB/s / cp median MB/s).

    python bench/dataset_upload.py [--size-mb 500] [--rounds 2] [--chunk-mb 16]

The default 500 MB fits 15 minutes on a busy 2-core machine (two rounds: about 2 GB written by cp, the
uploads and the unpacking); ``--size-mb 2000`` shows the memory stays flat for a 2 GB archive.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts/nginx")]

import frontdoor  # noqa: E402
from job_launch import ServiceProcess, free_port  # noqa: E402

from services import cli_datasets  # noqa: E402
from services.cli import Client  # noqa: E402

CLASSES = ("circle", "square", "stripe", "dots")
SIDE = 256  # a 256x256 noise PNG is about 197 KB


def make_images(root: Path, size_mb: int) -> int:
    """PNG noise images (incompressible, so the archive is ``size_mb``) in train/val class folders."""
    rng = np.random.default_rng(0)
    total, count = 0, 0
    while total < size_mb * 2**20:
        split = "val" if count % 5 == 4 else "train"
        folder = root / split / CLASSES[count % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))
        assert ok
        (folder / f"{count:06d}.png").write_bytes(png.tobytes())
        total, count = total + len(png), count + 1
    return count


class PeakRss:
    """The largest RSS of the service process (sampled every 50 ms) and of its children together (every 0.5 s)."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.service_mb = self.children_mb = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        tick = 0
        while not self.stop.wait(0.05):
            tick += 1
            try:
                self.service_mb = max(self.service_mb, self.proc.memory_info().rss / 2**20)
                if tick % 10:  # finding the children reads every process of the machine: every 0.5 s
                    continue
                children = 0.0
                for child in self.proc.children(recursive=True):
                    try:
                        children += child.memory_info().rss / 2**20
                    except psutil.NoSuchProcess:
                        pass
                self.children_mb = max(self.children_mb, children)
            except psutil.NoSuchProcess:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def cp_mb_s(archive: Path, size: int) -> float:
    copy = archive.with_name("copy.zip")
    start = time.perf_counter()
    subprocess.run(["cp", str(archive), str(copy)], check=True)
    os.sync()
    elapsed = time.perf_counter() - start
    copy.unlink()
    return size / 2**20 / elapsed


def upload_round(api: Client, archive: Path, size: int, chunk_mb: int) -> tuple[float, float, dict]:
    """Upload MB/s (create to finish), then seconds from finish to ready, and the version."""
    start = time.perf_counter()
    version = cli_datasets.upload(api, archive, "noise", {"task": "cls"}, chunk=chunk_mb * 2**20, progress=False)
    os.sync()
    uploaded = time.perf_counter()
    version = cli_datasets.wait_ended(api, version, poll_s=0.2)
    return size / 2**20 / (uploaded - start), time.perf_counter() - uploaded, version


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chunk-mb", type=int, default=cli_datasets.CHUNK_MB)
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cauchy-bench-upload-") as tmp:  # the archive beside the home
        tmp_path = Path(tmp)
        images = make_images(tmp_path / "noise", args.size_mb)
        archive = tmp_path / "noise.zip"
        with open(archive, "wb") as out:
            cli_datasets.zip_folder(tmp_path / "noise", out)
        shutil.rmtree(tmp_path / "noise")
        size = archive.stat().st_size
        print(f"archive: {images} PNG images, {size / 2**20:.0f} MB, on the same disk as the service's home")
        service = ServiceProcess(tmp_path / "home", dataset_quota_mb=str(4 * args.rounds * args.size_mb + 1024),
                                 dataset_chunk_mb=str(args.chunk_mb))
        os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
        door = frontdoor.FrontDoor("127.0.0.1", free_port(), f"127.0.0.1:{service.port}", tmp_path / "home",
                                   upload_max_body=f"{args.chunk_mb}m")
        nginx = frontdoor.start(door)
        peak = PeakRss(service.proc.pid)
        api = Client(door.url, service.headers["Authorization"].removeprefix("Bearer "))
        cps, uploads, to_ready, states = [], [], [], []
        try:
            for index in range(args.rounds):
                cps.append(cp_mb_s(archive, size))
                mb_s, ready_s, version = upload_round(api, archive, size, args.chunk_mb)
                uploads.append(mb_s)
                to_ready.append(ready_s)
                states.append(version["state"])
                print(f"round {index + 1}: cp {cps[-1]:7.1f} MB/s   upload through nginx {mb_s:7.1f} MB/s   "
                      f"unpacked and inspected in {ready_s:6.1f} s: {cli_datasets.describe(version)}", flush=True)
                api.call("DELETE", f"/datasets/{version['dataset_id']}/versions/{version['version']}")
        finally:
            peak.close()
            frontdoor.stop(nginx)
            service.close()
    result = {"size_mb": round(size / 2**20, 1), "images": images, "rounds": args.rounds, "chunk_mb": args.chunk_mb,
              "cp_mb_s": round(statistics.median(cps), 1), "upload_mb_s": round(statistics.median(uploads), 1),
              "ratio": round(statistics.median(uploads) / statistics.median(cps), 3),
              "to_ready_s": round(statistics.median(to_ready), 1), "states": states,
              "peak_service_rss_mb": round(peak.service_mb, 1), "peak_children_rss_mb": round(peak.children_mb, 1),
              "load_avg_1m": round(os.getloadavg()[0], 2), "wall_s": round(time.perf_counter() - began, 1),
              "time": "wall clock"}
    print(f"median: cp {result['cp_mb_s']} MB/s, upload {result['upload_mb_s']} MB/s (ratio {result['ratio']}), "
          f"ready {result['to_ready_s']} s after the upload; peak service RSS {result['peak_service_rss_mb']} MB")
    print(json.dumps(result))
    return 0 if all(state == "ready" for state in states) else 1


if __name__ == "__main__":
    sys.exit(main())
