"""The access rules: who reads and who changes a thing, in Python and as the SQL condition of a list."""
from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from services.auth.access import can_read, can_write, max_priority, readable_by
from services.auth.hosts import host_allowed, server_names, split_host
from services.auth.identity import Caller

ADMIN = Caller(1, "root", "admin")
OWNER = Caller(2, "ada", groups=frozenset({"vision"}), max_priority=5)
TEAMMATE = Caller(3, "bob", groups=frozenset({"vision", "audio"}))
OTHER = Caller(4, "eve", groups=frozenset({"audio"}))
THINGS = [("ada", "private"), ("ada", "public"), ("ada", "group:vision"), ("eve", "private"), ("eve", "group:audio")]
EXPECTED_READ = {
    None: [False] * 5,
    ADMIN: [True] * 5,
    OWNER: [True, True, True, False, False],
    TEAMMATE: [False, True, True, False, True],
    OTHER: [False, True, False, True, True],
}


@pytest.mark.parametrize("user", list(EXPECTED_READ))
def test_read_rule_in_python_and_sql_agree(user):
    assert [can_read(user, owner, vis) for owner, vis in THINGS] == EXPECTED_READ[user]
    table = Table("things", MetaData(), Column("id", Integer, primary_key=True), Column("owner", String),
                  Column("visibility", String))
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"owner": o, "visibility": v} for o, v in THINGS])
        ids = conn.scalars(select(table.c.id).where(readable_by(user, table.c.owner, table.c.visibility))).all()
    assert sorted(ids) == [i + 1 for i, ok in enumerate(EXPECTED_READ[user]) if ok]


def test_write_needs_ownership_or_admin_and_priority_an_allowance():
    assert can_write(OWNER, "ada") and can_write(ADMIN, "ada")
    assert not can_write(TEAMMATE, "ada") and not can_write(None, "ada")
    assert max_priority(OWNER) == 5 and max_priority(TEAMMATE) == 0 and max_priority(ADMIN) == 100


def test_host_names_with_and_without_ports():
    assert split_host("[::1]:8080") == ("[::1]", "8080") and split_host("Box") == ("box", "")
    assert host_allowed("[::1]:8080", ["[::1]"]) and host_allowed("box:8080", ["box:8080"])
    assert not host_allowed("box:9090", ["box:8080"]) and not host_allowed("", ["box"])
    assert not host_allowed("box.evil.example", ["box"])
    assert server_names(["box:8080", "box", "a.example"]) == ["a.example", "box"]
