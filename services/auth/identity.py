"""Who is calling: the snapshot of a user that the access rules and the views read."""
from __future__ import annotations

from dataclasses import dataclass, field

ADMIN, MEMBER = "admin", "member"
ROLES = (ADMIN, MEMBER)


@dataclass(frozen=True)
class Caller:
    """A signed-in user as one request sees it (read once, before the view)."""

    id: int
    name: str
    role: str = MEMBER
    groups: frozenset[str] = field(default_factory=frozenset)
    max_priority: int = 0
    display_name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN
