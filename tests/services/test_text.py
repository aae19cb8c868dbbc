"""Names refused or shown escaped: what the service takes as a name and what the CLI prints of one."""
from __future__ import annotations

from services.text import first_unprintable, printable


def test_control_and_format_characters_are_found():
    assert first_unprintable("a normal name, (v2) ü 数据") is None
    for bad in ("\x1b[31m", "\x00", "\x07", "\u202e", "\u2028", "\ufeff", "\x9b"):
        assert first_unprintable(f"x{bad}y") == bad[0]


def test_the_cli_shows_escape_sequences_instead_of_running_them():
    shown = printable("job \x1b]0;owned\x07 \x1b[2J done\u202e")
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert shown == "job \\x1b]0;owned\\x07 \\x1b[2J done\\u202e"
    assert printable("plain ü") == "plain ü"
