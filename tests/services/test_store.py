"""The schema is created, and upgraded in place, by the service."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from services.jobs.store import QUEUED, RUNNING, Store


def test_an_older_database_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(200), "
                          "user VARCHAR(100), phase VARCHAR(20), state VARCHAR(20), priority INTEGER, "
                          "gpus_requested INTEGER, gpus VARCHAR(100), hypes JSON, overrides JSON, created_at FLOAT)"))
        conn.execute(text("INSERT INTO jobs (name, user, phase, state, priority, gpus_requested, gpus, hypes, "
                          "overrides, created_at) VALUES ('old', 'u', 'train', 'queued', 0, 0, '', '{}', '[]', 1.0)"))
    store = Store(url)
    columns = {col["name"] for col in inspect(store.engine).get_columns("jobs")}
    assert {"visdom_port", "resume_from", "pid_started"} <= columns
    assert store.get(1).name == "old" and store.get(1).visdom_port is None


def test_transitions_only_from_the_expected_state(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    job = store.add(name="j", user="u", phase="train", hypes={}, overrides=[])
    assert store.transition(job.id, [QUEUED], state=RUNNING)
    assert not store.transition(job.id, [QUEUED], state="stopped")
    assert store.get(job.id).state == RUNNING


def test_the_schema_compiles_for_postgresql():
    """Only portable types and DDL: the same tables on a PostgreSQL URL (no server needed to check)."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    from services.jobs.store import Job

    ddl = str(CreateTable(Job.__table__).compile(dialect=postgresql.dialect()))
    assert "SERIAL" in ddl and "JSON" in ddl
    for index in Job.__table__.indexes:
        assert "CREATE INDEX" in str(CreateIndex(index).compile(dialect=postgresql.dialect()))
