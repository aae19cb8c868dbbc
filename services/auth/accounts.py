"""Users, groups, memberships and API tokens in the database: every read and write of them.

Passwords are argon2id hashes (argon2-cffi). A token is ``cau_`` and 43 random characters; only
HMAC-SHA256 of it under a server key is stored, so a copy of the database gives no usable token and
checking one per request costs one hash and one indexed look-up.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update

from services.api.errors import ApiError, bad_request, conflict, not_found
from services.api.jsonbody import json_integer
from services.auth import access
from services.auth.identity import ADMIN, MEMBER, ROLES, Caller
from services.auth.models import Group, Membership, Token, User
from services.jobs.store import Store, upgrade_schema
from services.text import first_unprintable

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
TOKEN_PREFIX = "cau_"
MAX_TOKEN_DAYS = 3650
LAST_USED_EVERY_S = 60.0  # last_used_at is written at most this often per token (a write per request is costly)
# Callers are remembered for this long, or until this service changes a user, group, membership or token;
# a change made to the database by anything else shows within this time.
CACHE_TTL_S = 30.0
CACHE_MAX = 10_000


@dataclass
class CachedCaller:
    """A caller as read from the database, reused until ``until`` or the next change of accounts."""

    until: float
    caller: Caller | None  # None: the user is disabled or gone
    session_version: str = ""
    token_id: int | None = None
    expires_at: float | None = None
    last_used_at: float | None = None


@dataclass(frozen=True)
class NewToken:
    row: Token
    secret: str  # shown once


def check_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise bad_request("expected 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit", field)
    return value


def check_password(value: Any, field: str = "password") -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise bad_request(f"expected a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters", field)
    return value


def check_role(value: Any) -> str:
    if value not in ROLES:
        raise bad_request(f"expected one of {', '.join(ROLES)}", "role")
    return value


def check_priority(value: Any) -> int:
    number = json_integer(value)
    if number is None or not 0 <= number <= access.PRIORITY_MAX:
        raise bad_request(f"expected an integer from 0 to {access.PRIORITY_MAX}", "max_priority")
    return number


class Accounts:
    """The identity tables over the jobs store's database."""

    def __init__(self, store: Store, token_key: bytes, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.token_key = token_key
        self.hasher = hasher or PasswordHasher()  # argon2id, the library's recommended cost
        self._dummy_hash = self.hasher.hash(secrets.token_hex(8))
        self._cache: dict[tuple[str, Any], CachedCaller] = {}
        upgrade_schema(store.engine)

    # Users
    def create_user(self, name: Any, password: Any, role: Any = MEMBER, display_name: Any = "",
                    max_priority: Any = 0) -> User:
        user = User(name=check_name(name), password_hash=self.hasher.hash(check_password(password)),
                    role=check_role(role), display_name=self._display_name(display_name),
                    max_priority=check_priority(max_priority), disabled=False, created_at=time.time())
        with self.store.session() as session:
            if session.scalar(select(User.id).where(User.name == user.name)) is not None:
                raise conflict(f"a user named {user.name!r} exists")
            session.add(user)
        return user

    @staticmethod
    def _display_name(value: Any) -> str:
        if not isinstance(value, str) or len(value) > 200:
            raise bad_request("expected a string of at most 200 characters", "display_name")
        if (bad := first_unprintable(value)) is not None:
            raise bad_request(f"control character U+{ord(bad):04X} is not allowed", "display_name")
        return value

    def update_user(self, name: str, changes: dict[str, Any]) -> User:
        """Change display_name, password, role, disabled or max_priority; anything else is a 400."""
        unknown = sorted(set(changes) - {"display_name", "password", "role", "disabled", "max_priority"})
        if unknown:
            raise bad_request(f"unknown field {unknown[0]!r}", unknown[0])
        values: dict[str, Any] = {}
        if "display_name" in changes:
            values["display_name"] = self._display_name(changes["display_name"])
        if "password" in changes:
            values["password_hash"] = self.hasher.hash(check_password(changes["password"]))
        if "role" in changes:
            values["role"] = check_role(changes["role"])
        if "disabled" in changes:
            if not isinstance(changes["disabled"], bool):
                raise bad_request("expected true or false", "disabled")
            values["disabled"] = changes["disabled"]
        if "max_priority" in changes:
            values["max_priority"] = check_priority(changes["max_priority"])
        with self.store.session() as session:
            user = session.scalar(select(User).where(User.name == name).with_for_update())
            if user is None:
                raise not_found(f"no user {name!r}")
            was_admin = user.role == ADMIN and not user.disabled
            for key, value in values.items():
                setattr(user, key, value)
            if was_admin and (user.role != ADMIN or user.disabled):
                others = select(func.count()).select_from(User).where(
                    User.role == ADMIN, User.disabled.is_(False), User.id != user.id)
                if not session.scalar(others):
                    raise conflict("this is the last enabled admin: make another admin first")
        self.changed()
        return user

    def users(self) -> list[tuple[User, list[str]]]:
        with self.store.session() as session:
            users = session.scalars(select(User).order_by(User.name)).all()
            groups = self._group_names(session, [user.id for user in users])
        return [(user, groups.get(user.id, [])) for user in users]

    def user(self, name: str) -> User | None:
        with self.store.session() as session:
            return session.scalar(select(User).where(User.name == name))

    def admin_name(self) -> str | None:
        """The first enabled admin's name (the owner of what predates users), or None."""
        with self.store.session() as session:
            return session.scalar(select(User.name).where(User.role == ADMIN, User.disabled.is_(False))
                                  .order_by(User.id).limit(1))

    def verify_password(self, name: Any, password: Any) -> User | None:
        """The enabled user ``name`` if ``password`` is theirs; an unknown name costs the same hash."""
        user = self.user(name) if isinstance(name, str) else None
        try:
            self.hasher.verify(user.password_hash if user else self._dummy_hash, str(password))
        except (VerificationError, InvalidHashError):
            return None
        return user if user is not None and not user.disabled else None

    @staticmethod
    def _group_names(session: Any, user_ids: list[int]) -> dict[int, list[str]]:
        rows = session.execute(select(Membership.user_id, Group.name).join(Group, Group.id == Membership.group_id)
                               .where(Membership.user_id.in_(user_ids)).order_by(Group.name)).all()
        names: dict[int, list[str]] = {}
        for user_id, group in rows:
            names.setdefault(user_id, []).append(group)
        return names

    def _caller(self, session: Any, user: User) -> Caller:
        groups = self._group_names(session, [user.id]).get(user.id, [])
        return Caller(user.id, user.name, user.role, frozenset(groups), user.max_priority, user.display_name)

    def caller(self, user_id: int, session_version: str | None = None) -> Caller | None:
        """The enabled user ``user_id`` (a session cookie's), if its password is still the one signed in with."""
        now = time.time()
        cached = self._cache.get(("user", user_id))
        if cached is None or cached.until <= now:
            with self.store.session() as session:
                user = session.get(User, user_id)
                cached = self._remember(("user", user_id), CachedCaller(
                    now + CACHE_TTL_S, None if user is None or user.disabled else self._caller(session, user),
                    session_fingerprint(user) if user else ""))
        if cached.caller is None or (session_version is not None and session_version != cached.session_version):
            return None
        return cached.caller

    def _remember(self, key: tuple[str, Any], entry: CachedCaller) -> CachedCaller:
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = entry
        return entry

    def end_sessions(self, user_id: int) -> None:
        """Sign ``user_id`` out of every browser: cookies signed in before now stop being accepted."""
        with self.store.session() as session:
            user = session.get(User, user_id)
            if user is not None:
                user.signed_out_at = time.time()
        self.changed()

    def changed(self) -> None:
        """Forget every cached caller: called by each write that can change who someone is or may do."""
        self._cache.clear()

    # Tokens
    def token_hash(self, token: str) -> str:
        return hmac.new(self.token_key, token.encode(), hashlib.sha256).hexdigest()

    def create_token(self, user_id: int, name: Any, expires_in_days: Any = None) -> NewToken:
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise bad_request("expected a name of 1 to 100 characters", "name")
        if expires_in_days is not None and (not isinstance(expires_in_days, int | float) or isinstance(expires_in_days, bool)
                                            or not 0 < expires_in_days <= MAX_TOKEN_DAYS):
            raise bad_request(f"expected a number of days from 0 to {MAX_TOKEN_DAYS} (or leave it out)", "expires_in_days")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        row = Token(user_id=user_id, name=name, hash=self.token_hash(secret), created_at=now, last_used_at=None,
                    expires_at=now + expires_in_days * 86400 if expires_in_days else None)
        with self.store.session() as session:
            session.add(row)
        return NewToken(row, secret)

    def tokens(self, user_id: int) -> list[Token]:
        with self.store.session() as session:
            return list(session.scalars(select(Token).where(Token.user_id == user_id).order_by(Token.id)).all())

    def revoke_token(self, user_id: int, token_id: int) -> bool:
        with self.store.session() as session:
            revoked = session.execute(delete(Token).where(Token.id == token_id, Token.user_id == user_id)).rowcount == 1
        self.changed()
        return revoked

    def caller_for_token(self, token: str) -> Caller | None:
        """The enabled owner of an unexpired ``token``; notes when it was used (at most once a minute)."""
        now, digest = time.time(), self.token_hash(token)
        cached = self._cache.get(("token", digest))
        if cached is None or cached.until <= now:
            with self.store.session() as session:
                row = session.execute(select(Token.id, Token.expires_at, Token.last_used_at, User)
                                      .join(User, User.id == Token.user_id).where(Token.hash == digest)).first()
                if row is None:
                    return None  # unknown tokens are not remembered: guesses must not fill the memory
                cached = self._remember(("token", digest), CachedCaller(
                    now + CACHE_TTL_S, None if row.User.disabled else self._caller(session, row.User), "",
                    row.id, row.expires_at, row.last_used_at))
        if cached.caller is None or (cached.expires_at is not None and cached.expires_at <= now):
            return None
        if cached.last_used_at is None or cached.last_used_at < now - LAST_USED_EVERY_S:
            cached.last_used_at = now
            with self.store.session() as session:
                session.execute(update(Token).where(Token.id == cached.token_id).values(last_used_at=now))
        return cached.caller

    # Groups
    def create_group(self, name: Any) -> Group:
        group = Group(name=check_name(name), created_at=time.time())
        with self.store.session() as session:
            if session.scalar(select(Group.id).where(Group.name == group.name)) is not None:
                raise conflict(f"a group named {group.name!r} exists")
            session.add(group)
        return group

    def groups(self) -> list[dict[str, Any]]:
        with self.store.session() as session:
            groups = session.scalars(select(Group).order_by(Group.name)).all()
            rows = session.execute(select(Membership.group_id, User.name, Membership.is_admin)
                                   .join(User, User.id == Membership.user_id).order_by(User.name)).all()
        members: dict[int, list[dict[str, Any]]] = {}
        for group_id, user, is_admin in rows:
            members.setdefault(group_id, []).append({"user": user, "admin": bool(is_admin)})
        return [{"name": g.name, "created_at": g.created_at, "members": members.get(g.id, [])} for g in groups]

    def is_group_admin(self, caller: Caller, group: str) -> bool:
        """Admins manage every group; a group admin manages the members of that group."""
        if caller.is_admin:
            return True
        with self.store.session() as session:
            return bool(session.scalar(select(Membership.is_admin).join(Group, Group.id == Membership.group_id)
                                       .where(Group.name == group, Membership.user_id == caller.id)))

    @staticmethod
    def _ids(session: Any, group: str, user: str, missing_user: int) -> tuple[int, int]:
        group_id = session.scalar(select(Group.id).where(Group.name == group))
        if group_id is None:
            raise not_found(f"no group {group!r}")
        user_id = session.scalar(select(User.id).where(User.name == user))
        if user_id is None:
            raise ApiError(missing_user, "unknown_user", f"no user {user!r}", "user")
        return group_id, user_id

    def set_member(self, group: str, user: Any, is_admin: Any = False) -> None:
        if not isinstance(is_admin, bool):
            raise bad_request("expected true or false", "admin")
        with self.store.session() as session:
            group_id, user_id = self._ids(session, group, check_name(user, "user"), 404)
            membership = session.get(Membership, (group_id, user_id))
            if membership is None:
                session.add(Membership(group_id=group_id, user_id=user_id, is_admin=is_admin))
            else:
                membership.is_admin = is_admin
        self.changed()

    def remove_member(self, group: str, user: str) -> None:
        with self.store.session() as session:
            group_id, user_id = self._ids(session, group, user, 404)
            if not session.execute(delete(Membership).where(Membership.group_id == group_id,
                                                            Membership.user_id == user_id)).rowcount:
                raise not_found(f"{user!r} is not a member of {group!r}")
        self.changed()


def session_fingerprint(user: User) -> str:
    """A fingerprint kept in the session cookie of the password hash and the last sign-out: a new password
    or signing out ends every session signed in before (the cookie itself lives on in the browser)."""
    return hashlib.sha256(f"{user.password_hash}|{user.signed_out_at or ''}".encode()).hexdigest()[:16]


def user_exists(store: Store, name: str) -> bool:
    with store.session() as session:
        return session.scalar(select(User.id).where(User.name == name)) is not None


def check_visibility(store: Store, value: Any, caller: Caller, field: str = "visibility") -> str:
    """``private``, ``public`` or ``group:<name>`` of a group the caller is in (admins: any group)."""
    if value in (access.PRIVATE, access.PUBLIC):
        return value
    group = access.visibility_group(value) if isinstance(value, str) else None
    if not group:
        raise bad_request("expected private, public or group:<name>", field)
    if group not in caller.groups:
        with store.session() as session:
            exists = session.scalar(select(Group.id).where(Group.name == group)) is not None
        if not (caller.is_admin and exists):
            raise bad_request(f"you are not a member of a group {group!r}", field, "unknown_group")
    return value
