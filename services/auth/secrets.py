"""Secrets made once under ``$CAUCHY_HOME`` and kept in files only their owner may read (0600)."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "secret_key"
ADMIN_PASSWORD_FILE = "admin_password"


def write_private(path: Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600 holding ``data``; False when it exists already (never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return True


def server_secret(home: Path) -> bytes:
    """The service's secret (cookie signing, token hashing): 32 random bytes, made at the first start."""
    path = home / SECRET_FILE
    write_private(path, secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose, so the cookie key and the token key are never the same bytes."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def token_key(home: Path) -> bytes:
    """The key API tokens are hashed with (services.auth.accounts)."""
    return derive_key(server_secret(home), "api tokens")


def session_key(home: Path) -> bytes:
    """The key session cookies are signed with."""
    return derive_key(server_secret(home), "session cookie")
