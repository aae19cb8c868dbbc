"""The one place a request's caller is read (flaskr's ``load_logged_in_user``), before every view.

- ``Authorization: Bearer <token>`` on every route; on the legacy ``/cauchy/*`` also a ``token``
  parameter (query string, form or JSON, like their other parameters).
- The signed session cookie on every route but the legacy ones, which never honour it: a page on
  another site could otherwise drive them through a signed-in browser.
- A state-changing request authenticated by the cookie must carry the session's CSRF token in the
  ``X-CSRF-Token`` header.
- Every view needs a caller (401 without one) unless marked ``open_to_anonymous``: a new route is
  closed until someone decides otherwise.
- The ``Host`` header must be an allowed one (``services.auth.hosts``), before anything else.
"""
from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from services.api.errors import ApiError
from services.auth.hosts import host_allowed
from services.auth.identity import Caller

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LEGACY_PREFIX = "/cauchy/"
CSRF_HEADER = "X-CSRF-Token"
LEGACY_NEEDS_TOKEN = "the legacy endpoints need a token: Authorization: Bearer <token> or token=<token>"
View = TypeVar("View", bound=Callable[..., Any])
_open_views: set[Callable[..., Any]] = set()


def open_to_anonymous(view: View) -> View:
    """Mark a view that answers without a caller (it may still look at ``current_user()``)."""
    _open_views.add(view)
    return view


def current_user() -> Caller | None:
    return g.get("user")


def login_required() -> Caller:
    """The caller, for views that are closed anyway; a 401 if there is none (never reached for those)."""
    user = current_user()
    if user is None:
        raise unauthenticated()
    return user


def admin_required() -> Caller:
    user = login_required()
    if not user.is_admin:
        raise ApiError(403, "forbidden", "only an admin may do this")
    return user


def unauthenticated(message: str = "sign in, or send Authorization: Bearer <token>") -> ApiError:
    return ApiError(401, "unauthenticated", message)


def client_address() -> str:
    """The caller's address: nginx's ``X-Real-IP`` when the request comes from nginx on this machine."""
    remote = request.remote_addr or ""
    forwarded = request.headers.get("X-Real-IP")
    try:
        local = ipaddress.ip_address(remote).is_loopback
    except ValueError:
        local = False
    return forwarded if forwarded and local else remote


def _legacy_token() -> str | None:
    """``token=`` among a legacy request's parameters (query string, form or JSON object, as its others)."""
    body = request.get_json(silent=True)
    token = request.args.get("token") or request.form.get("token") or (body.get("token") if isinstance(body, dict) else None)
    return token if isinstance(token, str) and token else None


def _bearer() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return _legacy_token() if request.path.startswith(LEGACY_PREFIX) else None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("expected Authorization: Bearer <token>")
    return token.strip()


def check_host() -> None:
    allowed = current_app.extensions["cauchy"].allowed_hosts
    if not host_allowed(request.host, allowed):
        raise ApiError(400, "bad_host", f"this service does not answer for host {request.host!r}; "
                                        "add it to CAUCHY_ALLOWED_HOSTS if it is yours")


def load_logged_in_user() -> None:
    """Set ``g.user`` (and ``g.via``: ``token``, ``cookie`` or None) and refuse what the rules refuse."""
    check_host()
    svc = current_app.extensions["cauchy"]
    g.user, g.via = None, None
    if svc.without_auth is not None:
        g.user, g.via = svc.without_auth, "benchmark"
    elif (token := _bearer()) is not None:
        g.user = svc.accounts.caller_for_token(token)
        if g.user is None:
            raise ApiError(401, "invalid_token", "this token is unknown, revoked or expired")
        g.via = "token"
    elif not request.path.startswith(LEGACY_PREFIX) and "uid" in session:
        g.user = svc.accounts.caller(session["uid"], session.get("pv"))
        if g.user is None:
            session.clear()
        else:
            g.via = "cookie"
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if g.user is None and view is not None and view not in _open_views:
        raise unauthenticated(LEGACY_NEEDS_TOKEN) if request.path.startswith(LEGACY_PREFIX) else unauthenticated()
    check_csrf(request.method)


def check_csrf(method: str) -> None:
    """A ``method`` request signed in by cookie that changes something must carry the session's CSRF token
    (``method`` is the request's own, or the one nginx says an ``auth_request`` guards)."""
    if g.via == "cookie" and method not in SAFE_METHODS:
        sent, expected = request.headers.get(CSRF_HEADER, ""), session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise ApiError(403, "csrf_failed", f"a request signed in by cookie must send the {CSRF_HEADER} header "
                                               "(GET /api/v1/auth/me gives it)")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, ``Secure`` when the request came over https (directly, or through nginx's
    ``X-Forwarded-Proto``, which waitress trusts from 127.0.0.1 only)."""

    def __init__(self) -> None:
        self._serializers: dict[Any, URLSafeTimedSerializer | None] = {}

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask builds the cookie's serializer for every request, a token's too (24 us: itsdangerous encodes
        a test value to learn its output type); it depends on the secret key alone, so one is kept per key."""
        key = app.secret_key
        if key not in self._serializers:
            self._serializers[key] = super().get_signing_serializer(app)
        return self._serializers[key]


def install(app: Flask, secret_key: bytes) -> None:
    """Session settings and the before-request hook."""
    app.secret_key = secret_key
    app.session_interface = SessionInterface()
    app.config.update(SESSION_COOKIE_NAME="cauchy_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=14 * 86400)
    app.before_request(load_logged_in_user)
