"""ONNX export of one small model of each task, torch's two exporters side by side.

For cls (small_cnn), det (yolov3_small), seg (tiny_unet) and pose (simple_baseline small), built from the
repository's hypes as tests/export/published.py builds them (seeded, no training: the numbers are about
the export, not accuracy): the seconds ``cauchy.export`` takes to write the ONNX file with the
TorchScript-based exporter (``dynamo=False``, what Cauchy uses) and with the dynamo exporter (torch
2.14's default, same opset and dynamic axes), and for each file the largest absolute difference between
onnxruntime's outputs and PyTorch's on a batch of ``--batch`` other images; also the TorchScript export's
seconds. Prints a table; the last line is one JSON object, ``ratio`` = dynamo seconds over
TorchScript-based seconds, all four models together.

    .venv/bin/python bench/export_onnx.py [--batch 4] [--no-dynamo]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests/export")]
from published import CASES, publish_tiny  # noqa: E402

from cauchy.export import OPSET, dynamic_axes, example_images, export, export_head, load_published, run_head  # noqa: E402


def dynamo_export(model, path: str) -> None:
    head = export_head(model.hypes, model.method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(head, (example_images(model),), path, input_names=["images"], output_names=list(head.outputs),
                          dynamic_axes=dynamic_axes(head), opset_version=OPSET, dynamo=True, verbose=False)


def max_difference(path: str, expected: list[np.ndarray], images: np.ndarray) -> float:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return max(float(np.abs(got - want).max()) for got, want in zip(session.run(None, {"images": images}), expected))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--no-dynamo", action="store_true", help="only the TorchScript-based exporter")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for task in sorted(CASES):
            tiny = publish_tiny(root, task)
            model = load_published(tiny.weights, tiny.run_dir)
            images = example_images(model, batch=args.batch, seed=1)
            expected = [t.numpy() for t in run_head(model, images)]
            row = {"model": model.hypes["network"]["model_name"]}
            t0 = time.perf_counter()
            export(model, "onnx", str(root / f"{task}.onnx"))
            row["torchscript_based_s"] = round(time.perf_counter() - t0, 2)
            row["torchscript_based_max_diff"] = max_difference(str(root / f"{task}.onnx"), expected, images.numpy())
            if not args.no_dynamo:
                t0 = time.perf_counter()
                dynamo_export(model, str(root / f"{task}_dynamo.onnx"))
                row["dynamo_s"] = round(time.perf_counter() - t0, 2)
                row["dynamo_max_diff"] = max_difference(str(root / f"{task}_dynamo.onnx"), expected, images.numpy())
            t0 = time.perf_counter()
            export(model, "torchscript", str(root / f"{task}.pt"))
            row["torchscript_file_s"] = round(time.perf_counter() - t0, 2)
            rows[task] = row
            print(f"{task:5} {row['model']:16} " + "  ".join(f"{k}={v:.3g}" for k, v in row.items() if k != "model"),
                  flush=True)
    legacy = sum(r["torchscript_based_s"] for r in rows.values())
    result = {"opset": OPSET, "batch": args.batch, "tasks": rows, "torchscript_based_s": round(legacy, 2),
              "load_average": os.getloadavg()[0], "run_s": round(time.perf_counter() - started, 1)}
    if not args.no_dynamo:
        result["dynamo_s"] = round(sum(r["dynamo_s"] for r in rows.values()), 2)
        result["ratio"] = round(result["dynamo_s"] / legacy, 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
