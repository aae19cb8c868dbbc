"""Sign-in, personal API tokens, and (for admins) users and groups, under ``/api/v1``.

- ``POST /auth/login`` ``{name, password}``: the session cookie and its CSRF token; failed attempts
  are limited per name and per address (429 with ``Retry-After``).
- ``POST /auth/logout``, ``GET /auth/me``.
- ``GET/POST /tokens``, ``DELETE /tokens/<id>``: the caller's own tokens; a new one is shown once.
- Admin: ``GET/POST /users``, ``PATCH /users/<name>``, ``GET/POST /groups``; admins and the group's
  admins: ``POST /groups/<name>/members``, ``DELETE /groups/<name>/members/<user>``.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, session
from flask.typing import ResponseReturnValue

from services.api.errors import ApiError, bad_request, error_body, not_found
from services.auth.access import max_priority
from services.auth.accounts import Accounts, session_fingerprint
from services.auth.identity import Caller
from services.auth.models import Token, User
from services.auth.seam import admin_required, client_address, login_required, open_to_anonymous
from services.ratelimit import RateLimiter

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


@dataclass
class SignInLimits:
    """Failed sign-ins allowed per name and per address in a quarter of an hour (an office shares an address)."""

    by_name: RateLimiter = field(default_factory=lambda: RateLimiter(10, 900.0))
    by_address: RateLimiter = field(default_factory=lambda: RateLimiter(50, 900.0))


def accounts() -> Accounts:
    return current_app.extensions["cauchy"].accounts


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("send a JSON object with Content-Type: application/json", None, "invalid_body")
    return body


def me_json(user: Caller) -> dict[str, Any]:
    """The signed-in user; ``max_priority`` is what they may give a job (an admin: the top of the range)."""
    return {"name": user.name, "display_name": user.display_name, "role": user.role, "groups": sorted(user.groups),
            "max_priority": max_priority(user)}


def user_json(user: User, groups: list[str]) -> dict[str, Any]:
    return {"name": user.name, "display_name": user.display_name, "role": user.role, "groups": groups,
            "max_priority": user.max_priority, "disabled": user.disabled, "created_at": user.created_at}


def token_json(token: Token) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "created_at": token.created_at, "last_used_at": token.last_used_at,
            "expires_at": token.expires_at}


def created(body: dict[str, Any]) -> ResponseReturnValue:
    return jsonify(body), 201


@bp.post("/auth/login")
@open_to_anonymous
def login() -> ResponseReturnValue:
    body = json_body()
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise bad_request("send {\"name\": ..., \"password\": ...}", "name" if not isinstance(name, str) else "password")
    limits: SignInLimits = current_app.extensions["cauchy"].sign_in_limits
    checks = [(limits.by_name, name.lower()), (limits.by_address, client_address())]
    wait = max(limiter.retry_after(key) for limiter, key in checks)
    if wait:
        seconds = math.ceil(wait)
        response = jsonify(error_body("rate_limited", f"too many failed sign-ins; try again in {seconds} s"))
        return response, 429, {"Retry-After": str(seconds)}
    user = accounts().verify_password(name, password)
    if user is None:
        for limiter, key in checks:
            limiter.record(key)
        raise ApiError(401, "bad_credentials", "unknown name or wrong password (or the account is disabled)")
    limits.by_name.reset(name.lower())
    session.clear()
    session.permanent = True
    session.update(uid=user.id, pv=session_fingerprint(user), csrf=secrets.token_urlsafe(32))
    return jsonify({"user": me_json(accounts().caller(user.id)), "csrf_token": session["csrf"]})


@bp.post("/auth/logout")
@open_to_anonymous
def logout() -> ResponseReturnValue:
    """Ends the caller's sessions everywhere, not just this cookie: a copied cookie stops working too."""
    if g.get("via") == "cookie":
        accounts().end_sessions(login_required().id)
    session.clear()
    return "", 204


@bp.get("/auth/me")
def me() -> ResponseReturnValue:
    return jsonify({"user": me_json(login_required()), "csrf_token": session.get("csrf")})


@bp.get("/tokens")
def tokens() -> ResponseReturnValue:
    return jsonify({"tokens": [token_json(token) for token in accounts().tokens(login_required().id)]})


@bp.post("/tokens")
def create_token() -> ResponseReturnValue:
    body = json_body()
    unknown = sorted(set(body) - {"name", "expires_in_days"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}", unknown[0])
    new = accounts().create_token(login_required().id, body.get("name"), body.get("expires_in_days"))
    return created({**token_json(new.row), "token": new.secret})


@bp.delete("/tokens/<int:token_id>")
def revoke_token(token_id: int) -> ResponseReturnValue:
    if not accounts().revoke_token(login_required().id, token_id):
        raise not_found(f"you have no token {token_id}")
    return "", 204


@bp.get("/users")
def users() -> ResponseReturnValue:
    admin_required()
    return jsonify({"users": [user_json(user, groups) for user, groups in accounts().users()]})


@bp.post("/users")
def create_user() -> ResponseReturnValue:
    admin_required()
    body = json_body()
    unknown = sorted(set(body) - {"name", "password", "display_name", "role", "max_priority"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}", unknown[0])
    user = accounts().create_user(body.get("name"), body.get("password"), body.get("role", "member"),
                                  body.get("display_name", ""), body.get("max_priority", 0))
    return created(user_json(user, []))


@bp.patch("/users/<name>")
def update_user(name: str) -> ResponseReturnValue:
    admin_required()
    user = accounts().update_user(name, json_body())
    groups = next((groups for row, groups in accounts().users() if row.id == user.id), [])
    return jsonify(user_json(user, groups))


@bp.get("/groups")
def groups() -> ResponseReturnValue:
    admin_required()
    return jsonify({"groups": accounts().groups()})


@bp.post("/groups")
def create_group() -> ResponseReturnValue:
    admin_required()
    body = json_body()
    group = accounts().create_group(body.get("name"))
    return created({"name": group.name, "created_at": group.created_at, "members": []})


def group_admin_required(group: str) -> None:
    """Admins and the group's own admins manage its members."""
    if not accounts().is_group_admin(login_required(), group):
        raise ApiError(403, "forbidden", "only an admin or the group's admins may change its members")


def group_json(name: str) -> dict[str, Any]:
    found = next((group for group in accounts().groups() if group["name"] == name), None)
    if found is None:
        raise not_found(f"no group {name!r}")
    return found


@bp.post("/groups/<name>/members")
def add_member(name: str) -> ResponseReturnValue:
    group_admin_required(name)
    body = json_body()
    unknown = sorted(set(body) - {"user", "admin"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}", unknown[0])
    accounts().set_member(name, body.get("user"), body.get("admin", False))
    return jsonify(group_json(name))


@bp.delete("/groups/<name>/members/<user>")
def remove_member(name: str, user: str) -> ResponseReturnValue:
    group_admin_required(name)
    accounts().remove_member(name, user)
    return jsonify(group_json(name))
