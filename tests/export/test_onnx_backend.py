"""The onnxruntime backend of cauchy.inference (``"backend": "onnxruntime"`` of a deployment): the entry's
ONNX export run by ONNX Runtime, decoded by the method's own ``from_exported``, answers as the PyTorch
backend within 1e-4, for one tiny model of each exportable kind; an entry without the export is refused."""
from __future__ import annotations

import json

import pytest
import torch
from published import CASES, publish_tiny

from cauchy import rundir
from cauchy.datasets.io import read_image
from cauchy.export import export, load_published
from cauchy.files import sha256_file
from cauchy.inference import InferenceError, load_predictor


@pytest.mark.parametrize("task", list(CASES))
def test_the_onnxruntime_backend_answers_as_torch(tmp_path, task):
    tiny = publish_tiny(tmp_path, task)
    export(load_published(tiny.weights, tiny.run_dir), "onnx", str(tmp_path / "tiny.onnx"))
    _, _, names, metadata, _, _ = CASES[task]
    entry = {"name": tiny.name, "file": tiny.weights.name, "sha256": sha256_file(tiny.weights), "class_names": names,
             "metadata": metadata, "hypes": json.loads((tiny.run_dir / rundir.HYPES).read_text()),
             "exports": {"onnx": {"file": "tiny.onnx", "sha256": sha256_file(tmp_path / "tiny.onnx")}}}
    ours, theirs = (load_predictor(entry, str(tmp_path), backend=backend) for backend in ("onnxruntime", "torch"))
    samples = [theirs.sample(read_image(str(path)), path.name) for path in sorted(tiny.images.iterdir())]
    for mine, reference in zip(ours.predict(samples), theirs.predict(samples)):
        assert set(mine) == set(reference)
        for key, value in reference.items():
            assert torch.allclose(torch.as_tensor(mine[key]).float(), torch.as_tensor(value).float(), atol=1e-4), key
    with pytest.raises(InferenceError, match="no ONNX export"):
        load_predictor({**entry, "exports": {}}, str(tmp_path), backend="onnxruntime")
