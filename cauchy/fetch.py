"""Where ``network.pretrained`` may come from, and downloads that keep to it (torch-free: the service
checks a submission with the same rules the job applies when it fetches).

``run_tasks.py`` on its own fetches anything (a path, any URL): that is the default policy. A job the
service starts gets its policy in ``CAUCHY_WEIGHTS_POLICY``: weights-host names, the ``job:<id>``
checkpoints the service resolved, and URLs under the prefixes an admin allows, whose host must
resolve to public addresses only. The address checked is the address connected to (pinned), so a
name that resolves to a public address at the check and a private one at the connection (DNS
rebinding) cannot reach the service's own ports. Downloads stop at a size cap and a deadline.
"""
from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

from cauchy.manifest import NAME_RE

POLICY_ENV = "CAUCHY_WEIGHTS_POLICY"
JOB_PREFIX = "job:"
MAX_REDIRECTS = 5
BLOCK = 1 << 20


class FetchRefused(ValueError):
    """A weights reference or download the policy does not allow."""


@dataclass(frozen=True)
class FetchPolicy:
    """What ``network.pretrained`` may name. The defaults are ``run_tasks.py``'s: anything."""

    local_paths: bool = True
    url_prefixes: tuple[str, ...] | None = None  # None: any http(s) URL
    public_only: bool = False  # refuse loopback, link-local, private and reserved addresses
    max_bytes: int | None = None
    timeout_s: float = 60.0  # the whole download
    aliases: Mapping[str, str] = field(default_factory=dict)  # "job:<id>" -> the checkpoint the service chose

    def to_json(self) -> str:
        return json.dumps({"local_paths": self.local_paths, "url_prefixes": self.url_prefixes,
                           "public_only": self.public_only, "max_bytes": self.max_bytes,
                           "timeout_s": self.timeout_s, "aliases": dict(self.aliases)})

    @classmethod
    def from_json(cls, text: str) -> FetchPolicy:
        doc = json.loads(text)
        prefixes = doc.get("url_prefixes")
        return cls(local_paths=bool(doc.get("local_paths", False)),
                   url_prefixes=tuple(prefixes) if prefixes is not None else None,
                   public_only=bool(doc.get("public_only", True)), max_bytes=doc.get("max_bytes"),
                   timeout_s=float(doc.get("timeout_s", 60.0)), aliases=dict(doc.get("aliases") or {}))


def current_policy() -> FetchPolicy:
    """The policy the service gave this process, else the standalone one (anything goes)."""
    text = os.environ.get(POLICY_ENV)
    return FetchPolicy.from_json(text) if text else FetchPolicy()


def is_url(ref: str) -> bool:
    return ref.startswith(("http://", "https://"))


def is_weights_name(ref: str) -> bool:
    return NAME_RE.fullmatch(ref) is not None


def job_reference(ref: str) -> int | None:
    """``job:12`` -> 12; None when ``ref`` is not of that form."""
    if not ref.startswith(JOB_PREFIX):
        return None
    digits = ref[len(JOB_PREFIX):]
    return int(digits) if digits.isdigit() and len(digits) <= 18 else None


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRefused(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class Target:
    """A URL checked against a policy, with the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str


def check_url(url: str, policy: FetchPolicy, resolver: Resolver = resolve_host) -> Target:
    """``url`` as the policy allows it, resolved once; the address returned is the one to use."""
    if policy.url_prefixes is not None and not any(url.startswith(prefix) for prefix in policy.url_prefixes):
        allowed = ", ".join(policy.url_prefixes) or "none (an admin sets CAUCHY_WEIGHTS_URL_PREFIXES)"
        raise FetchRefused(f"{url} is not under an allowed URL prefix; allowed: {allowed}")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused(f"{url} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"{url} is not an http(s) URL with a host")
    addresses = resolver(parts.hostname, port)
    if not addresses:
        raise FetchRefused(f"{parts.hostname} resolves to no address")
    if policy.public_only:
        private = [a for a in addresses if not public_address(a)]
        if private:
            raise FetchRefused(f"{parts.hostname} resolves to {private[0]}, a loopback, link-local, private or "
                               "reserved address: weights are fetched from public hosts only")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, parts.hostname, port, path, addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever the name resolves to now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to the checked address; the certificate is checked against the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self.address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def download(url: str, out: IO[bytes], policy: FetchPolicy, resolver: Resolver = resolve_host) -> str:
    """Stream ``url`` into ``out`` under ``policy``; the sha256 of what was written."""
    deadline = time.monotonic() + policy.timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(url, policy, resolver)
        remaining = max(0.1, deadline - time.monotonic())
        connection = (_PinnedHTTPS if target.scheme == "https" else _PinnedHTTP)(target, remaining)
        try:
            connection.request("GET", target.path, headers={"User-Agent": "cauchy-weights"})
            response = connection.getresponse()
            location = response.getheader("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                url = urllib.parse.urljoin(url, location)
                continue
            if response.status != 200:
                raise FetchRefused(f"{url}: HTTP {response.status} {response.reason}")
            length = response.getheader("Content-Length")
            if policy.max_bytes is not None and length and length.isdigit() and int(length) > policy.max_bytes:
                raise FetchRefused(f"{url}: {int(length)} bytes, more than the {policy.max_bytes} allowed")
            digest, size = hashlib.sha256(), 0
            while block := response.read1(BLOCK):  # what has arrived: a trickle still meets the deadline
                size += len(block)
                if policy.max_bytes is not None and size > policy.max_bytes:
                    raise FetchRefused(f"{url}: more than the {policy.max_bytes} bytes allowed")
                if time.monotonic() > deadline:
                    raise FetchRefused(f"{url}: not downloaded within {policy.timeout_s:g} s")
                out.write(block)
                digest.update(block)
            return digest.hexdigest()
        finally:
            connection.close()
    raise FetchRefused(f"{url}: more than {MAX_REDIRECTS} redirects")
