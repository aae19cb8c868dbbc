"""Pretrained weights: local or over HTTP, sha256-checked, cached, loaded with head replacement."""
import functools
import http.server
import os
import threading

import pytest
import torch

import cauchy.models  # noqa: F401
from cauchy.registry import MODELS
from cauchy.weights import WeightsError, fetch_weights, load_matching, load_pretrained, read_state_dict, sha256_file


@pytest.fixture
def weights_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "small.pth"
    torch.save(MODELS.build("small_cnn", num_classes=10).state_dict(), path)
    return path


@pytest.fixture
def http_dir(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_local_file_hash_checked(weights_file):
    digest = sha256_file(str(weights_file))
    assert fetch_weights(str(weights_file), digest) == str(weights_file)
    with pytest.raises(WeightsError, match=f"sha256 mismatch: expected {'0' * 64}, got {digest}"):
        fetch_weights(str(weights_file), "0" * 64)
    with pytest.raises(WeightsError, match="do not exist"):
        fetch_weights(str(weights_file) + ".missing")


def test_url_download_is_cached_and_verified(weights_file, http_dir, tmp_path):
    served, base, hits = http_dir
    (served / "w.pth").write_bytes(weights_file.read_bytes())
    digest = sha256_file(str(weights_file))
    cache = str(tmp_path / "cache")
    first = fetch_weights(f"{base}/w.pth", digest, cache_dir=cache)
    second = fetch_weights(f"{base}/w.pth", digest, cache_dir=cache)
    assert first == second and sha256_file(first) == digest and len(hits) == 1
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        fetch_weights(f"{base}/w.pth", "f" * 64, cache_dir=cache)
    assert sorted(os.listdir(cache)) == [digest + ".pth"]  # nothing half-written left behind
    with pytest.raises(WeightsError, match="cannot download"):
        fetch_weights(f"{base}/missing.pth", cache_dir=cache)


def test_unreadable_and_mismatched_weights(tmp_path, weights_file):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth does not load as weights only"):
        read_state_dict(str(junk))
    with pytest.raises(WeightsError, match="no tensor matches ResNet"):
        load_matching(MODELS.build("resnet18", num_classes=10), read_state_dict(str(weights_file)), "small.pth")


def test_head_of_another_shape_is_replaced(weights_file):
    model = MODELS.build("small_cnn", num_classes=3)
    report = load_pretrained(model, str(weights_file))
    assert report["replaced"] == ["classifier.1.weight (10, 64) -> (3, 64)", "classifier.1.bias (10,) -> (3,)"]
    assert torch.equal(model.state_dict()["features.0.0.weight"],
                       torch.load(weights_file, weights_only=True)["features.0.0.weight"])
