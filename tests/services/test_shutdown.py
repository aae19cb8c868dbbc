"""``cauchy shutdown`` stops the service on this machine with its jobs and viewers; the service says at
start that stopping it alone leaves them running (on purpose, for adoption)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from live_service import FAKE_TASK, answers, make_hypes, port_range, wait_for

from services import cli
from services.config import Settings
from services.jobs.store import Store
from services.shutdown import PID_FILE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "shutdown-test-password"


@pytest.mark.slow
def test_cauchy_shutdown_stops_the_service_its_jobs_and_viewers(tmp_path, monkeypatch, capsys, free_port) -> None:
    port, (viz, _), home = free_port, port_range(1), tmp_path / "home"
    env = {"CAUCHY_HOME": str(home), "CAUCHY_PORT": str(port), "CAUCHY_VISDOM_PORTS": f"{viz}-{viz}",
           "CAUCHY_TASK_COMMAND": f"{sys.executable} {FAKE_TASK}", "CAUCHY_ADMIN_PASSWORD": PASSWORD,
           "CAUCHY_COMPONENT_CHECK": "", "CAUCHY_STOP_GRACE_S": "5"}
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        service = subprocess.Popen([sys.executable, "-m", "services"], cwd=REPO, env={**os.environ, **env},
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: answers(port), 60, "the service")
        client = cli.Client(f"http://127.0.0.1:{port}", None)
        client.http.headers["Authorization"] = f"Bearer {cli.sign_in(client, 'admin', PASSWORD, 't')['token']}"
        job = client.call("POST", "/jobs", json={"hypes": make_hypes("run", 1000)})
        queued = client.call("POST", "/jobs", json={"hypes": make_hypes("run", 1000)})
        wait_for(lambda: client.call("GET", f"/jobs/{job['id']}")["state"] == "running" and answers(viz), 60,
                 "the job and its viewer")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert cli.main(["shutdown"]) == 0
        assert "stopped the service" in capsys.readouterr().out
        assert service.wait(5) is not None
    finally:
        if service.poll() is None:
            os.killpg(service.pid, 9)
    assert not answers(port) and not answers(viz)
    store = Store(Settings(home=home).db_url)
    assert store.get(job["id"]).state == "stopped" and store.get(queued["id"]).state == "stopped"
    text = log.read_text()
    assert "leaves its jobs and their viewers running on purpose" in text and "cauchy shutdown: stopped jobs" in text
    assert not (home / PID_FILE).exists()
    with pytest.raises(SystemExit, match="no Cauchy service running"):
        cli.main(["shutdown"])
