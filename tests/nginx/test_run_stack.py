"""``make run``'s stack (scripts/nginx/run_stack.py) shuts down exactly once: SIGTERM sent twice to
its process group (``make`` and the script both get it) still stops the job, its viewer, the service
and nginx, and nothing answers on their ports afterwards."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from stack import FAKE_TASK, REPO, free_port, make_hypes, service_fixtures

from services.cli import Client, sign_in

PASSWORD = "stack-test-password"
answers, wait_for = service_fixtures.answers, service_fixtures.wait_for


@pytest.mark.slow
def test_sigterm_twice_to_the_process_group_stops_everything_once(tmp_path) -> None:
    front, service_port, viz = free_port(), free_port(), free_port()
    env = {**os.environ, "CAUCHY_HOME": str(tmp_path / "home"), "CAUCHY_PORT": str(service_port),
           "CAUCHY_VISDOM_PORTS": f"{viz}-{viz}", "CAUCHY_TASK_COMMAND": f"{sys.executable} {FAKE_TASK}",
           "CAUCHY_ADMIN_PASSWORD": PASSWORD, "CAUCHY_COMPONENT_CHECK": "", "CAUCHY_STOP_GRACE_S": "5"}
    # a shell stands in for make: both are in the group the signal goes to
    stack = subprocess.Popen(["sh", "-c", f"{sys.executable} scripts/nginx/run_stack.py --port {front} "
                                          f"--host 127.0.0.1; echo shell-done"],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        wait_for(lambda: answers(front) and answers(service_port), 120, "the stack to start")
        client = Client(f"http://127.0.0.1:{front}", None)
        client.http.headers["Authorization"] = f"Bearer {sign_in(client, 'admin', PASSWORD, 'test')['token']}"
        job = client.call("POST", "/jobs", json={"hypes": make_hypes("run", 1000)})
        wait_for(lambda: client.call("GET", f"/jobs/{job['id']}")["state"] == "running" and answers(viz), 60,
                 "the job and its viewer")
        os.killpg(stack.pid, signal.SIGTERM)
        time.sleep(0.3)
        os.killpg(stack.pid, signal.SIGTERM)
        out, _ = stack.communicate(timeout=120)
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
    assert out.count("stopping: jobs save a checkpoint first") == 1 and "stopped" in out.splitlines(), out
    wait_for(lambda: not any(answers(port) for port in (front, service_port, viz)), 15, "the ports to close")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{service_port}/api/v1/health", timeout=2)
