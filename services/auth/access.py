"""Who may read and who may change a job or a weights entry: the only place these rules live.

A thing has an owner (a user name) and a visibility: ``private`` (owner only), ``public`` (every
signed-in user) or ``group:<name>`` (the members of that group). Admins read and change everything.
Reading needs visibility; changing (stop, resume, publish, delete, visibility) needs ownership.
``readable_by`` is the same read rule as a SQL condition, so a list is one indexed query.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, true

from services.auth.identity import Caller

PRIVATE, PUBLIC, GROUP_PREFIX = "private", "public", "group:"
JOB_DEFAULT, WEIGHTS_DEFAULT = PRIVATE, PUBLIC
PRIORITY_MAX = 100


def group_visibility(group: str) -> str:
    return GROUP_PREFIX + group


def visibility_group(visibility: str) -> str | None:
    """The group a visibility shares with, or None for private/public."""
    return visibility[len(GROUP_PREFIX):] if visibility.startswith(GROUP_PREFIX) else None


def can_read(user: Caller | None, owner: str, visibility: str | None) -> bool:
    """May ``user`` see a thing of ``owner`` shared as ``visibility``? Anonymous callers see nothing."""
    if user is None:
        return False
    if user.is_admin or user.name == owner or visibility == PUBLIC:
        return True
    group = visibility_group(visibility or PRIVATE)
    return group is not None and group in user.groups


def can_write(user: Caller | None, owner: str) -> bool:
    """May ``user`` stop, resume, publish, delete or re-share a thing of ``owner``?"""
    return user is not None and (user.is_admin or user.name == owner)


def readable_by(user: Caller | None, owner_column: Any, visibility_column: Any) -> ColumnElement[bool]:
    """``can_read`` as a WHERE condition over an owner and a visibility column."""
    if user is None:
        return false()
    if user.is_admin:
        return true()
    shared = [PUBLIC, *(group_visibility(group) for group in sorted(user.groups))]
    return or_(owner_column == user.name, visibility_column.in_(shared))


def read_rule_key(user: Caller) -> tuple[bool | str, ...]:
    """What ``readable_by`` depends on: two callers with the same key read the same things."""
    return (True,) if user.is_admin else (False, user.name, *sorted(user.groups))


def max_priority(user: Caller) -> int:
    """The highest priority ``user`` may give a job: admins any, members what an admin allowed (0 by default)."""
    return PRIORITY_MAX if user.is_admin else user.max_priority
