"""Text a person reads in a terminal or a page: which characters may not appear in names, and how to
show text that has them anyway (the service refuses them in names; the CLI escapes what it prints)."""
from __future__ import annotations

import unicodedata
from typing import Any

# Control and format characters: escape sequences, NUL, bidirectional overrides, line separators.
UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def first_unprintable(text: str) -> str | None:
    return next((ch for ch in text if unicodedata.category(ch) in UNPRINTABLE), None)


def printable(text: Any) -> str:
    """``text`` with each unprintable character shown as its escape (``\\x1b``) instead of acting."""
    return "".join(ch if unicodedata.category(ch) not in UNPRINTABLE else ch.encode("unicode_escape").decode("ascii")
                   for ch in str(text))
