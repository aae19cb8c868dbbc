"""Which group a user's jobs count against for fair share and quotas: the first of the user's groups (by
name) that has a share or a quota in the settings, else their first group, else none ("")."""
from __future__ import annotations

from collections.abc import Container

from sqlalchemy import select

from services.auth.models import Group, Membership, User
from services.jobs.store import Store


def scheduling_groups(store: Store, configured: Container[str]) -> dict[str, str]:
    """User name -> group name, for every user in a group (one query)."""
    query = (select(User.name, Group.name).join(Membership, Membership.user_id == User.id)
             .join(Group, Group.id == Membership.group_id).order_by(User.name, Group.name))
    chosen: dict[str, str] = {}
    with store.engine.connect() as conn:
        for user, group in conn.execute(query):
            if user not in chosen or (group in configured and chosen[user] not in configured):
                chosen[user] = group
    return chosen
