"""Exports of one tiny model of each task: ONNX and TorchScript files answer as the PyTorch model does (within
1e-4, at another batch size than the one traced), the edge bundle's predictor gives the predict phase's
answers on the same images, in this process and in a fresh virtual environment without torch (slow: it
installs onnxruntime, NumPy and OpenCV from the package index), and what cannot be exported is refused by name."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from published import CASES, Tiny, publish_tiny, read_predictions
from script_loader import load_script

from cauchy import rundir
from cauchy.export import (
    OPSET,
    ExportError,
    Published,
    check_format,
    edge_settings,
    example_images,
    export,
    export_head,
    load_published,
    run_head,
)
from cauchy.hypes import load_hypes, resolve_hypes
from cauchy.runner import RunOptions, run
from services.exports import EDGE_MODEL, edge_requirements, write_bundle

TASKS = sorted(CASES)


class Exported:
    """A task's tiny model published, exported to an unpacked edge bundle, and predicted on by the framework."""

    def __init__(self, root: Path, task: str) -> None:
        self.tiny: Tiny = publish_tiny(root, task)
        self.model: Published = load_published(self.tiny.weights, self.tiny.run_dir)
        onnx_file = root / f"{task}.onnx"
        started = time.perf_counter()
        self.info = export(self.model, "onnx", str(onnx_file))
        self.seconds = time.perf_counter() - started
        self.bundle = root / f"bundle_{task}"
        write_bundle(root / f"{task}.edge.zip", onnx_file, {"name": self.tiny.name}, self.info["edge"])
        with zipfile.ZipFile(root / f"{task}.edge.zip") as bundle:
            assert sorted(bundle.namelist()) == sorted([EDGE_MODEL, "manifest.json", "predict.py", "requirements.txt"])
            bundle.extractall(self.bundle)
        hypes = resolve_hypes(load_hypes(str(self.tiny.run_dir / rundir.HYPES)))  # what run_tasks.py --phase predict runs
        assert run(hypes, RunOptions(run_dir=str(self.tiny.run_dir), phase="predict", input=str(self.tiny.images))) == 0
        self.predicted = read_predictions(self.tiny.run_dir / rundir.PREDICTIONS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    root = tmp_path_factory.mktemp("exports")
    return {task: Exported(root, task) for task in TASKS}


def assert_close(got: Any, want: Any, where: str = "") -> None:
    """Same structure, same strings and integers, floats within 1e-3 (pixels, scores)."""
    assert type(got) is type(want) or {type(got), type(want)} <= {int, float}, f"{where}: {got!r} vs {want!r}"
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), f"{where}: keys {sorted(got)} vs {sorted(want)}"
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} items vs {len(want)}"
        for i, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(want, float):
        assert abs(got - want) <= 1e-3, f"{where}: {got} vs {want}"
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


def assert_same_answers(edge: dict[str, dict[str, Any]], framework: dict[str, dict[str, Any]]) -> None:
    assert sorted(edge) == sorted(framework)
    for name in framework:
        assert_close({k: v for k, v in edge[name].items() if k != "path"},
                     {k: v for k, v in framework[name].items() if k != "path"}, name)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("task", TASKS)
def test_onnx_and_torchscript_give_the_pytorch_outputs(exported: dict[str, Exported], tmp_path, task: str) -> None:
    case = exported[task]
    images = example_images(case.model, batch=3, seed=1)  # traced with 2
    expected = [t.numpy() for t in run_head(case.model, images)]

    graph = onnx.load(str(case.bundle / EDGE_MODEL))
    assert case.info["opset"] == OPSET and graph.opset_import[0].version == OPSET
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(case.bundle / EDGE_MODEL), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == case.info["outputs"]
    for got, want in zip(session.run(None, {"images": images.numpy()}), expected):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-6)  # rtol: box corners of ~200 px, ulp 1.5e-5

    export(case.model, "torchscript", str(tmp_path / "model.pt"))
    traced = torch.jit.load(str(tmp_path / "model.pt"))
    with torch.no_grad():
        out = traced(images)
    for got, want in zip(out if isinstance(out, tuple) else (out,), expected):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_edge_predictor_answers_as_the_predict_phase(exported: dict[str, Exported], task: str) -> None:
    case = exported[task]
    predictor = load_script("scripts/edge/predict.py").EdgePredictor(str(case.bundle))
    edge = {path.name: predictor.predict(str(path)) for path in sorted(case.tiny.images.iterdir())}
    assert_same_answers(edge, case.predicted)
    answers = [{k: v for k, v in p.items() if k != "path"} for p in case.predicted.values()]
    assert any(a != answers[0] for a in answers), "the images should not all get one answer"


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the bundle's requirements only (no torch, no Cauchy)."""
    venv = tmp_path_factory.mktemp("edge") / "venv"
    requirements = venv.parent / "requirements.txt"
    requirements.write_text(edge_requirements())
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-compile", "-r", str(requirements)], check=True,
                   capture_output=True)
    print(f"edge venv made in {time.perf_counter() - started:.1f} s")
    return venv


@pytest.mark.slow
def test_edge_bundle_runs_without_torch(exported: dict[str, Exported], edge_venv: Path, tmp_path) -> None:
    python = str(edge_venv / "bin/python")
    assert subprocess.run([python, "-c", "import torch"], capture_output=True).returncode != 0
    for task, case in exported.items():
        out = tmp_path / f"{task}.json"
        subprocess.run([python, str(case.bundle / "predict.py"), str(case.tiny.images), "--out", str(out)], check=True,
                       cwd=tmp_path)
        assert_same_answers(read_predictions(out), case.predicted)


def test_the_model_rebuilds_from_the_manifest_entry_alone(exported: dict[str, Exported]) -> None:
    """A publish records the hypes, class names and metadata in the entry: no source job needed."""
    case = exported["pose"]  # its metadata (left/right pairs) shapes the flip test's output
    entry = {"hypes": case.model.hypes, "class_names": case.model.class_names, "metadata": case.model.metadata}
    alone = load_published(case.tiny.weights, None, entry)
    images = example_images(case.model, batch=1)
    torch.testing.assert_close(run_head(alone, images), run_head(case.model, images), rtol=0, atol=0)
    with pytest.raises(ExportError, match="the entry records no hypes and its source job's are gone"):
        load_published(case.tiny.weights, case.tiny.run_dir / "gone")


def test_refusals_name_what_is_wrong(exported: dict[str, Exported]) -> None:
    with pytest.raises(ExportError, match="unknown export format 'tflite'; valid: onnx, torchscript"):
        check_format("tflite")
    with pytest.raises(ExportError, match="^method: unknown exportable method 'faster_rcnn'; valid: fcn_segmentor, "):
        export_head({"method": "faster_rcnn"}, exported["cls"].model.method)
    seg = exported["seg"].model
    random_scale = {**seg.hypes, "test": {**seg.hypes["test"], "aug_trans": {
        "trans_seq": ["random_scale"], "random_scale": {"scale": [0.5, 1.0]}}}}
    with pytest.raises(ExportError, match=r"^test.aug_trans.random_scale.scale: is random \(\[0.5, 1.0\]\)"):
        edge_settings(Published(random_scale, seg.method, seg.class_names, seg.metadata), export_head(seg.hypes, seg.method))


def test_edge_settings_describe_the_pipeline(exported: dict[str, Exported]) -> None:
    det = exported["det"].info["edge"]
    assert det["preprocess"] == [{"op": "resize", "size": [128, 128], "keep_ratio": True, "fill": 0, "interpolation": 1}]
    assert det["postprocess"] == {"kind": "det_dense", "score_thresh": 0.5, "nms_iou": 0.5, "max_dets": 100,
                                  "pre_nms": 1000, "size_divisor": 32}
    pose = exported["pose"].info["edge"]
    assert pose["preprocess"][0]["op"] == "top_down_affine" and pose["postprocess"]["stride"] == 4
    assert json.loads(json.dumps(pose)) == pose  # plain JSON, as the bundle's manifest holds it
