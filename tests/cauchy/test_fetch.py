"""Fetching pretrained weights under a policy: the address checked is the address connected to, and
downloads stop at their size cap and deadline; the job process applies the service's policy itself."""
from __future__ import annotations

import http.server
import io
import json
import threading
import time
from collections.abc import Iterator

import pytest

from cauchy import fetch
from cauchy.fetch import POLICY_ENV, FetchPolicy, FetchRefused, check_url, download
from cauchy.weights import WeightsError, fetch_weights

PUBLIC = "93.184.216.34"


class Handler(http.server.BaseHTTPRequestHandler):
    """``/big`` 2 MiB with its length, ``/stream`` 2 MiB without, ``/slow`` a byte every 0.2 s, ``/host`` the Host."""

    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path == "/big":
            self.send_header("Content-Length", str(2 * 2**20))
        self.end_headers()
        if self.path in ("/big", "/stream"):
            self.wfile.write(b"x" * 2 * 2**20)
        elif self.path == "/slow":
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        else:
            self.wfile.write(self.headers["Host"].encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def resolver_to(*answers: list[str]):
    """A resolver answering each call with the next list (a name that rebinds between lookups)."""
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1", "fe80::1",
                                     "::ffff:127.0.0.1", "100.64.0.1", "0.0.0.0"])
def test_private_addresses_are_refused_after_resolution(address):
    policy = FetchPolicy(public_only=True)
    with pytest.raises(FetchRefused, match="public hosts only"):
        check_url("http://weights.example/w.pth", policy, resolver_to([PUBLIC, address]))
    assert check_url("http://weights.example/w.pth", policy, resolver_to([PUBLIC])).address == PUBLIC


def test_prefixes_are_checked_before_anything_is_resolved():
    policy = FetchPolicy(url_prefixes=("https://weights.example/",), public_only=True)
    resolve = resolver_to([PUBLIC])
    with pytest.raises(FetchRefused, match="allowed URL prefix"):
        check_url("https://weights.example.evil/x.pth", policy, resolve)
    assert resolve.calls == []


def test_the_connection_goes_to_the_checked_address(monkeypatch):
    """DNS rebinding: the name is public at the check and loopback a moment later; the connection still
    goes to the public address it was checked at (and the name is looked up once)."""
    resolve = resolver_to([PUBLIC], ["127.0.0.1"])
    connected = []

    def create_connection(address, *args, **kwargs):
        connected.append(address[0])
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(fetch.socket, "create_connection", create_connection)
    with pytest.raises(ConnectionRefusedError):
        download("http://weights.example/w.pth", io.BytesIO(), FetchPolicy(public_only=True), resolve)
    assert connected == [PUBLIC] and resolve.calls == ["weights.example"]


def test_a_pinned_connection_keeps_the_host_name(server):
    out = io.BytesIO()
    download(f"http://weights.example:{server}/host", out, FetchPolicy(), resolver_to(["127.0.0.1"]))
    assert out.getvalue() == f"weights.example:{server}".encode()


@pytest.mark.parametrize("path", ["/big", "/stream"])
def test_downloads_stop_at_the_size_cap(server, path):
    with pytest.raises(FetchRefused, match="allowed"):
        download(f"http://127.0.0.1:{server}{path}", io.BytesIO(), FetchPolicy(max_bytes=2**20))


def test_downloads_stop_at_the_deadline(server):
    with pytest.raises(FetchRefused, match="not downloaded within"):
        download(f"http://127.0.0.1:{server}/slow", io.BytesIO(), FetchPolicy(timeout_s=1.0))


def test_the_job_process_applies_the_services_policy(monkeypatch, tmp_path, server):
    """What ``run_tasks.py`` does when the service started it: no local path, no loopback URL even under an
    allowed prefix, a ``job:<id>`` only as the service resolved it."""
    checkpoint = tmp_path / "best.pth"
    checkpoint.write_bytes(b"weights")
    policy = FetchPolicy(local_paths=False, url_prefixes=("http://127.0.0.1:",), public_only=True, max_bytes=2**20,
                         aliases={"job:7": str(checkpoint)})
    monkeypatch.setenv(POLICY_ENV, policy.to_json())
    monkeypatch.setenv("CAUCHY_HOME", str(tmp_path))
    assert fetch_weights("job:7") == str(checkpoint)
    with pytest.raises(WeightsError, match="local paths are refused"):
        fetch_weights(str(checkpoint))
    with pytest.raises(WeightsError, match="service"):
        fetch_weights("job:8")
    with pytest.raises(WeightsError, match="public hosts only"):
        fetch_weights(f"http://127.0.0.1:{server}/big", cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    monkeypatch.delenv(POLICY_ENV)  # run_tasks.py alone: today's behaviour
    assert fetch_weights(str(checkpoint)) == str(checkpoint)


def test_policy_round_trip():
    policy = FetchPolicy(local_paths=False, url_prefixes=("https://w/",), public_only=True, max_bytes=5,
                         timeout_s=3.0, aliases={"job:1": "/x"})
    assert FetchPolicy.from_json(policy.to_json()) == policy
    assert json.loads(FetchPolicy().to_json())["url_prefixes"] is None


def test_resolve_host_names_an_unknown_host():
    with pytest.raises(FetchRefused, match="cannot resolve"):
        fetch.resolve_host("no-such-host.invalid", 80)
    assert set(fetch.resolve_host("localhost", 80)) & {"127.0.0.1", "::1"}
