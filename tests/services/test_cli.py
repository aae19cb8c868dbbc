"""``cauchy`` drives jobs over the REST API."""
from __future__ import annotations

import json

import pytest

from services.cli import main


def test_submit_list_show_logs_stop(service, fake_hypes, tmp_path, capsys):
    hypes_file = tmp_path / "job.json"
    hypes_file.write_text(json.dumps(fake_hypes("run")))
    cli = ["--url", service.url, "--user", "grace"]
    assert main([*cli, "submit", str(hypes_file), "--set", "solver.max_iters=9", "--name", "from cli"]) == 0
    assert capsys.readouterr().out.startswith("job 1 queued (queue position 1)")
    service.wait_metrics(1)
    main([*cli, "list"])
    listing = capsys.readouterr().out
    assert "running" in listing and "grace" in listing and "from cli" in listing and "(1 of 1)" in listing
    main([*cli, "show", "1"])
    assert json.loads(capsys.readouterr().out)["hypes"]["solver"]["max_iters"] == 9
    main([*cli, "logs", "1"])
    assert "fake task run" in capsys.readouterr().out
    main([*cli, "stop", "1"])
    assert capsys.readouterr().out.strip() in ("job 1 stopping", "job 1 stopped")
    service.wait_ended(1)
    main([*cli, "logs", "1", "--follow"])
    assert "stopped after a checkpoint" in capsys.readouterr().out


def test_errors_are_one_line_and_exit_nonzero(service):
    with pytest.raises(SystemExit, match=r"error: no job 5"):
        main(["--url", service.url, "show", "5"])
    with pytest.raises(SystemExit, match=r"no hypes file 'nope' under hypes/ \[hypes\]"):
        main(["--url", service.url, "submit", "nope"])
    with pytest.raises(SystemExit, match="no Cauchy service"):
        main(["--url", "http://127.0.0.1:9", "list"])
