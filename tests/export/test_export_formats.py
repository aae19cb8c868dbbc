"""ONNX and TorchScript files of a published model answer as the PyTorch model does (within 1e-4), for one
model of each task, at another batch size than the one traced; what cannot be exported is refused by name."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from published import CASES, publish_tiny

from cauchy.export import OPSET, ExportError, check_format, edge_settings, example_images, export, export_head, load_published, run_head


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("published")
    return {task: load_published(tiny.weights, tiny.run_dir)
            for task, tiny in ((task, publish_tiny(root, task)) for task in CASES)}


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("task", sorted(CASES))
def test_onnx_and_torchscript_give_the_pytorch_outputs(published: dict, tmp_path, task: str) -> None:
    model = published[task]
    images = example_images(model, batch=3, seed=1)  # traced with 2
    expected = [t.numpy() for t in run_head(model, images)]

    info = export(model, "onnx", str(tmp_path / "model.onnx"))
    graph = onnx.load(str(tmp_path / "model.onnx"))
    assert info["opset"] == OPSET and graph.opset_import[0].version == OPSET
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == info["outputs"]
    for got, want in zip(session.run(None, {"images": images.numpy()}), expected):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)

    export(model, "torchscript", str(tmp_path / "model.pt"))
    traced = torch.jit.load(str(tmp_path / "model.pt"))
    with torch.no_grad():
        out = traced(images)
    for got, want in zip(out if isinstance(out, tuple) else (out,), expected):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4, rtol=0)


def test_refusals_name_what_is_wrong(published: dict) -> None:
    with pytest.raises(ExportError, match="unknown export format 'tflite'; valid: onnx, torchscript"):
        check_format("tflite")
    with pytest.raises(ExportError, match="^method: unknown exportable method 'faster_rcnn'; valid: fcn_segmentor, "):
        export_head({"method": "faster_rcnn"}, published["cls"].method)
    seg = published["seg"]
    random_scale = {**seg.hypes, "test": {**seg.hypes["test"], "aug_trans": {
        "trans_seq": ["random_scale"], "random_scale": {"scale": [0.5, 1.0]}}}}
    with pytest.raises(ExportError, match=r"^test.aug_trans.random_scale.scale: is random \(\[0.5, 1.0\]\)"):
        edge_settings(type(seg)(random_scale, seg.method, seg.class_names, seg.metadata), export_head(seg.hypes, seg.method))
