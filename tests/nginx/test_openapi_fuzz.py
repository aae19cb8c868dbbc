"""schemathesis against ``/api/v1/openapi.json`` through nginx, signed in with an admin's token: no request
gets a server error or a status the document does not list, and no request the document calls valid is
refused. Bounded in examples per operation, without shrinking, so ``make test`` stays quick. Run as its
CLI (``python -m schemathesis.cli``): its pytest plugin does not load under this pytest.

Some operations run apart: ``POST /jobs``, ``POST /deployments`` and three dataset operations without the "valid request
accepted" check (whether a hypes document is valid depends on the registries, the data roots and the
templates; a folder to register on the data roots; an upload's size on the caller's quota left; a chunk
on the bytes received so far; a deployment's weights on the weights host and its replicas and device on
the service's settings: nothing a JSON schema states, and the 400 names the field), and
``DELETE /tokens/{token_id}`` last, since it may revoke the token the run signs in with."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from stack import Stack, fast_settings

EXAMPLES_PER_OPERATION = 10
ALL_CHECKS = "not_a_server_error,status_code_conformance,positive_data_acceptance"
SHAPE_CHECKS = "not_a_server_error,status_code_conformance"
REVOKE = "DELETE /tokens/{token_id}"
STATEFUL = ("POST /jobs", "POST /datasets/register", "POST /datasets/uploads", "PUT /datasets/uploads/{upload_id}",
            "POST /deployments")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """No scheduler (submitted jobs stay queued, nothing is launched) and limits high enough for a flood
    of generated submissions."""
    live = Stack(fast_settings(tmp_path_factory.mktemp("fuzz") / "home", run_jobs=False,
                               submit_rate_per_min=100_000, max_queued_per_user=100_000))
    yield live
    live.close()


def schemathesis(stack: Stack, checks: str, *selection: str) -> subprocess.CompletedProcess:
    """One CLI run, in the stack's home (schemathesis keeps a cache in its working directory)."""
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", stack.url + "/api/v1/openapi.json",
         "--url", stack.url + "/api/v1", "--header", f"Authorization: Bearer {stack.service.token}",
         "--checks", checks, "--max-examples", str(EXAMPLES_PER_OPERATION), "--phases", "examples,coverage,fuzzing",
         "--seed", "9", "--no-shrink", "--request-timeout", "30", "--suppress-health-check", "all",
         "--generation-database", "none", *selection],
        capture_output=True, text=True, timeout=600, cwd=stack.service.settings.home)


def option(flag: str, names: tuple[str, ...]) -> list[str]:
    return [part for name in names for part in (flag, name)]


@pytest.mark.slow
def test_the_api_keeps_to_its_document(fuzzed):
    for checks, selection in ((ALL_CHECKS, [*option("--exclude-name", STATEFUL), "--exclude-name", REVOKE]),
                              (SHAPE_CHECKS, option("--include-name", STATEFUL)),
                              (ALL_CHECKS, ["--include-name", REVOKE])):
        done = schemathesis(fuzzed, checks, *selection)
        assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
        assert "passed" in done.stdout, done.stdout[-5000:]
