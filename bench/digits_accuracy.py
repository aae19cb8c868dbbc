"""Digits demo: validation top-1 and wall time of the shipped hypes, trained on this CPU.

Target: top-1 >= 0.97 in under two minutes. Runs ``run_tasks.py`` as a user would (a fresh
process, data prepared by ``scripts/cls/digits/prepare.py``). The last line is one JSON object;
``ratio`` is the reached top-1 over the 0.97 target.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from cauchy.visualizer import read_events  # noqa: E402

TARGET = 0.97


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hypes", default=os.path.join(REPO, "hypes/cls/image_classifier_smallcnn_digits.json"))
    p.add_argument("--data", default=os.path.join(REPO, "data/digits"))
    args = p.parse_args()
    subprocess.run([sys.executable, os.path.join(REPO, "scripts/cls/digits/prepare.py"), "--out", args.data], check=True)
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(REPO, "run_tasks.py"), "--hypes", args.hypes, "--tmp_dir", run_dir,
                        "--set", f"data.data_dir={args.data}", "--set", "logging.progress_bar=false"],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        top1 = [e for e in read_events(os.path.join(run_dir, "metrics.jsonl"))
                if e["phase"] == "val" and e["name"] == "top1"]
    final = top1[-1]["value"]
    print(f"{os.path.basename(args.hypes)}: final val top-1 {final:.4f} (best {max(e['value'] for e in top1):.4f}) "
          f"in {seconds:.1f} s wall, process start included; target >= {TARGET} in < 120 s")
    print(json.dumps({"benchmark": "digits_accuracy", "top1": round(final, 4), "seconds": round(seconds, 1),
                      "target_top1": TARGET, "ratio": round(final / TARGET, 4)}))


if __name__ == "__main__":
    main()
