"""Fine-tuning from published weights follows the weights' visibility, like fine-tuning from a job."""
from __future__ import annotations

import json

import pytest

from services.api.errors import ApiError
from services.auth.identity import ADMIN, Caller
from services.config import Settings
from services.containment import check_pretrained
from services.weights_store import weights_dir

ALICE, BOB = Caller(1, "alice"), Caller(2, "bob", groups=frozenset({"vision"}))


@pytest.fixture
def settings(tmp_path):
    directory = weights_dir(tmp_path)
    directory.mkdir()
    entries = [{"name": name, "file": f"{name}.pth", "owner": "alice", "visibility": visibility}
               for name, visibility in (("mine", "private"), ("team", "group:vision"), ("open", "public"))]
    (directory / "manifest.json").write_text(json.dumps({"weights": entries}), encoding="utf-8")
    return Settings(home=tmp_path)


@pytest.mark.parametrize(("caller", "name", "allowed"), [
    (ALICE, "mine", True), (BOB, "mine", False), (Caller(3, "root", role=ADMIN), "mine", True),
    (BOB, "team", True), (Caller(4, "carol"), "team", False), (BOB, "open", True),
])
def test_weights_by_name_need_read_access(settings, caller, name, allowed):
    if allowed:
        check_pretrained(settings, None, name, caller)
        return
    with pytest.raises(ApiError) as refused:
        check_pretrained(settings, None, name, caller)
    assert refused.value.status == 400 and refused.value.field == "hypes.network.pretrained"
    assert "no published weights named" in refused.value.message
