"""``cauchy`` drives jobs over the REST API, with a token: signs in, manages tokens, users and groups."""
from __future__ import annotations

import io
import json
import stat

import pytest

from services.cli import main, tokens_file


def test_submit_list_show_logs_stop(service, fake_hypes, tmp_path, capsys):
    hypes_file = tmp_path / "job.json"
    hypes_file.write_text(json.dumps(fake_hypes("run")))
    cli = ["--url", service.url, "--token", service.as_user("grace").token]
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


def test_errors_are_one_line_and_exit_nonzero(service, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CAUCHY_TOKEN", service.token)
    with pytest.raises(SystemExit, match=r"error: no job 5"):
        main(["--url", service.url, "show", "5"])
    with pytest.raises(SystemExit, match=r"no hypes file 'nope' under hypes/ \[hypes\]"):
        main(["--url", service.url, "submit", "nope"])
    with pytest.raises(SystemExit, match="no Cauchy service"):
        main(["--url", "http://127.0.0.1:9", "list"])
    monkeypatch.delenv("CAUCHY_TOKEN")
    with pytest.raises(SystemExit, match=r"sign in.*run `cauchy login`"):
        main(["--url", service.url, "list"])


def test_login_stores_a_private_token_that_later_commands_use(service, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CAUCHY_TOKEN", raising=False)
    service.as_user("lin", password="lins-password")
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong-password\n"))
    with pytest.raises(SystemExit, match="unknown name or wrong password"):
        main(["--url", service.url, "login", "--name", "lin", "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("lins-password\n"))
    assert main(["--url", service.url, "login", "--name", "lin", "--password-stdin"]) == 0
    path = tokens_file()
    assert path == tmp_path / "config" / "cauchy" / "tokens.json" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(json.loads(path.read_text())) == [service.url]
    capsys.readouterr()
    main(["--url", service.url, "token", "list"])
    assert "cauchy login on" in capsys.readouterr().out  # the stored token acted as lin
    main(["--url", service.url, "token", "create", "ci", "--expires-in-days", "1"])
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("cau_") and secret not in path.read_text()
    tokens = service.call("GET", "/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}).json()["tokens"]
    ci = next(token for token in tokens if token["name"] == "ci")
    assert ci["expires_at"] is not None
    main(["--url", service.url, "token", "revoke", str(ci["id"])])
    assert service.call("GET", "/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_admin_adds_users_and_groups(service, monkeypatch, capsys):
    cli = ["--url", service.url, "--token", service.token]
    monkeypatch.setattr("sys.stdin", io.StringIO("first-password\n"))
    main([*cli, "user", "add", "kim", "--display-name", "Kim", "--max-priority", "3", "--password-stdin"])
    assert service.accounts.verify_password("kim", "first-password").max_priority == 3
    monkeypatch.setattr("sys.stdin", io.StringIO("second-password\n"))
    main([*cli, "user", "passwd", "kim", "--password-stdin"])
    assert service.accounts.verify_password("kim", "second-password") is not None
    main([*cli, "group", "add", "vision"])
    main([*cli, "group", "member", "vision", "kim", "--admin"])
    assert service.accounts.groups()[0]["members"] == [{"user": "kim", "admin": True}]
    main([*cli, "user", "disable", "kim"])
    assert service.accounts.verify_password("kim", "second-password") is None
    assert "kim is an admin of vision" in capsys.readouterr().out
    member = ["--url", service.url, "--token", service.as_user("max").token]
    with pytest.raises(SystemExit, match="only an admin"):
        main([*member, "group", "add", "audio"])
