"""``cauchy hypes upgrade OLD.json``: the Cauchy form, which resolves, and the report on stderr."""
from __future__ import annotations

import json
import os

from cauchy.hypes import resolve_hypes
from services import cli

HERE = os.path.dirname(os.path.abspath(__file__))
OLD = os.path.join(HERE, "hypes", "det_ssd300_vgg16_voc.json")


def test_upgrade_writes_the_cauchy_form_and_reports_on_stderr(tmp_path, capsys) -> None:
    out = tmp_path / "new.json"
    assert cli.main(["hypes", "upgrade", OLD, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("torchcv hypes translated: ") and "translated method ('single_shot_detector' -> 'ssd')" in err
    new = json.loads(out.read_text())
    assert resolve_hypes(new)["network"]["model_name"] == "ssd300_vgg16"
    assert cli.main(["hypes", "upgrade", str(out)]) == 0  # already Cauchy's: printed unchanged
    printed, err = capsys.readouterr()
    assert json.loads(printed) == new and "already in Cauchy's form" in err


def test_a_missing_or_broken_file_is_an_error(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert cli.main(["hypes", "upgrade", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}: invalid JSON at line 1")
    assert cli.main(["hypes", "upgrade", str(tmp_path / "none.json")]) == 2
