"""The ``Host`` check against DNS rebinding: a page on another site that resolves its own name to this
machine must not reach the API. The service and nginx answer only the names in
``CAUCHY_ALLOWED_HOSTS``. An entry without a port allows that name on any port; ``name:port`` only
that port."""
from __future__ import annotations

import socket
from collections.abc import Iterable


def default_allowed_hosts() -> tuple[str, ...]:
    """localhost, the loopback addresses and this machine's name (short and fully qualified)."""
    names = {"localhost", "127.0.0.1", "[::1]", socket.gethostname().lower(), socket.getfqdn().lower()}
    return tuple(sorted(name for name in names if name))


def split_host(host: str) -> tuple[str, str]:
    """``"Name:8080"`` -> ``("name", "8080")``; ``"[::1]:80"`` -> ``("[::1]", "80")``; no port -> ``""``."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest.removeprefix(":")
    name, _, port = host.partition(":")
    return name, port


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    if not host:
        return False
    name, port = split_host(host)
    for entry in allowed:
        entry_name, entry_port = split_host(entry)
        if entry_name == name and entry_port in ("", port):
            return True
    return False


def server_names(allowed: Iterable[str]) -> list[str]:
    """The names for nginx's ``server_name`` (which ignores ports)."""
    return sorted({split_host(entry)[0] for entry in allowed})
