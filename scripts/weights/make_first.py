#!/usr/bin/env python
"""Make and publish the first pretrained weights on a fresh machine, with no download: a small CNN
trained on the digits (scikit-learn's bundled copy), published as ``small_cnn_digits``, so "finetune
from pretrained" works at once. Does nothing when the entry exists.

    python scripts/weights/make_first.py [--home VAR] [--data data/digits] [--epochs 4]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cauchy import rundir  # noqa: E402
from cauchy.manifest import find_entry  # noqa: E402
from services.weights_store import final_metrics, publish, weights_dir  # noqa: E402

NAME = "small_cnn_digits"
HYPES = REPO / "hypes/cls/image_classifier_smallcnn_digits.json"


def make_first(home: Path, data: str, epochs: int, name: str = NAME) -> dict:
    """Train (in a temporary run directory) and publish; returns the manifest entry."""
    existing = find_entry(weights_dir(home), name)
    if existing is not None:
        return existing
    with tempfile.TemporaryDirectory(prefix="cauchy-first-weights-") as run_dir:
        overrides = [f"data.data_dir={data}", f"solver.max_epoch={epochs}", f"solver.test_interval={epochs}",
                     "logging.progress_bar=false"]
        cmd = [sys.executable, "run_tasks.py", "--hypes", str(HYPES), "--tmp_dir", run_dir]
        for item in overrides:
            cmd += ["--set", item]
        done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"training the first weights failed:\n{done.stderr.strip()[-2000:]}")
        run = Path(run_dir)
        hypes = json.loads((run / rundir.HYPES).read_text(encoding="utf-8"))
        return publish(weights_dir(home), name, rundir.model_checkpoint(run), hypes=hypes,
                       metrics=final_metrics(run / rundir.METRICS), source_job=None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("CAUCHY_HOME", str(REPO / "var")))
    parser.add_argument("--data", default=str(REPO / "data/digits"))
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    entry = make_first(Path(args.home), args.data, args.epochs)
    print(f"weights {entry['name']}: {entry['size']} bytes, sha256 {entry['sha256'][:12]}…, metrics {entry['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
