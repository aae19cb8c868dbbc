"""``cauchy export`` and ``POST /api/v1/weights/<name>/export`` on a live service: the owner's export (one,
the edge bundle: each is a child process importing torch) joins the weights host with its sha256 in the
manifest entry and downloads like the weights; bad requests are refused naming what is wrong. The ONNX and
TorchScript files themselves: test_export.py."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import zipfile

import pytest
from published import REPO, publish_tiny

from services import cli
from services.weights_store import write_manifest

sys.path.insert(0, str(REPO / "tests/nginx"))
from stack import fast_settings, service_fixtures

JOB = 41


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """olive's published tiny classifier (shared with group team) trained by job 41 and an entry without a
    source job; users olive, gus (team) and otto."""
    root = tmp_path_factory.mktemp("export_api")
    service = service_fixtures.LiveService(fast_settings(root / "home"))
    try:
        tiny = publish_tiny(root, "cls")
        weights = service.settings.home / "weights"
        weights.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tiny.run_dir, service.supervisor.job_dir(JOB))
        for name in ("tiny_cls", "orphan"):
            shutil.copy(tiny.weights, weights / f"{name}.pth")
        share = {"owner": "olive", "visibility": "group:team"}
        write_manifest(weights, [{"name": "tiny_cls", "file": "tiny_cls.pth", "source_job": JOB, **share},
                                 {"name": "orphan", "file": "orphan.pth", "source_job": None, **share}])
        clients = {"olive": service.as_user("olive", groups=("team",)), "gus": service.as_user("gus", groups=("team",)),
                   "otto": service.as_user("otto")}
        yield service, clients, weights
    finally:
        service.close()


def test_the_owner_exports_with_the_cli_and_the_file_is_served_like_the_weights(world, tmp_path, capsys) -> None:
    service, clients, weights = world
    olive = clients["olive"]
    out = tmp_path / "bundle.zip"
    assert cli.main(["--url", service.url, "--token", olive.token, "export", "--weights", "tiny_cls",
                     "--format", "edge", "-o", str(out)]) == 0
    assert "tiny_cls: edge export tiny_cls.edge.zip" in capsys.readouterr().out
    data = (weights / "tiny_cls.edge.zip").read_bytes()
    assert out.read_bytes() == data
    entry = next(e for e in olive.call("GET", "/api/v1/weights").json()["weights"] if e["name"] == "tiny_cls")
    record = entry["exports"]["edge"]
    assert (record["file"], record["url"], record["opset"]) == ("tiny_cls.edge.zip", "/weights/tiny_cls.edge.zip", 18)
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["size"] == len(data)
    manifest = {e["name"]: e for e in olive.call("GET", "/weights/manifest.json").json()["weights"]}
    assert manifest["tiny_cls"]["exports"]["edge"]["sha256"] == record["sha256"]
    assert clients["gus"].call("GET", "/weights/tiny_cls.edge.zip").content == data  # readers of the weights
    assert clients["otto"].call("GET", "/weights/tiny_cls.edge.zip").status_code == 404
    with zipfile.ZipFile(out) as bundle:
        assert sorted(bundle.namelist()) == ["manifest.json", "model.onnx", "predict.py", "requirements.txt"]
        inside = json.loads(bundle.read("manifest.json"))
        assert "onnxruntime==" in bundle.read("requirements.txt").decode()
    assert inside["weights"]["name"] == "tiny_cls" and inside["edge"]["postprocess"] == {"kind": "cls", "top_k": 5}
    assert inside["edge"]["class_names"] == [str(i) for i in range(10)]


@pytest.mark.parametrize(("who", "name", "body", "status", "says"), [
    ("olive", "tiny_cls", {"format": "tflite"}, 400, "unknown export format 'tflite'; valid: onnx, torchscript, edge"),
    ("olive", "tiny_cls", {"format": "onnx", "opset": 9}, 400, "unknown field 'opset'"),
    ("olive", "tiny_cls", ["onnx"], 400, "send a JSON object"),
    ("olive", "tiny_cls", {}, 400, "format is required"),
    ("olive", "nothing", {"format": "onnx"}, 404, "no weights 'nothing'"),
    ("otto", "tiny_cls", {"format": "onnx"}, 404, "no weights 'tiny_cls'"),
    ("gus", "tiny_cls", {"format": "onnx"}, 403, "only the owner or an admin may export them"),
    ("olive", "orphan", {"format": "onnx"}, 409, "have no source job on this service"),
])
def test_refusals_name_what_is_wrong(world, who: str, name: str, body, status: int, says: str) -> None:
    service, clients, weights = world
    reply = clients[who].call("POST", f"/api/v1/weights/{name}/export", json=body)
    assert reply.status_code == status, reply.text
    assert says in reply.json()["error"]["message"]
    assert str(service.settings.home) not in reply.text  # no server paths
