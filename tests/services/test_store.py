"""The schema is created, and upgraded in place, by the service."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from services.jobs.store import QUEUED, RUNNING, Job, Store


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


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres").new_database()
    return f"sqlite:///{tmp_path / 'c.db'}"


def test_transitions_only_from_the_expected_state(store_url: str):
    store = Store(store_url)
    job = store.add(name="j", user="u", phase="train", hypes={"a": [1]}, overrides=["x=1"])
    assert store.transition(job.id, [QUEUED], state=RUNNING)
    assert not store.transition(job.id, [QUEUED], state="stopped")
    assert store.get(job.id).state == RUNNING and store.get(job.id).hypes == {"a": [1]}


def test_listing_and_queue_order_and_a_second_start_upgrades_nothing(store_url: str):
    store = Store(store_url)
    ids = [store.add(name=f"j{i}", user="u", phase="train", hypes={}, overrides=[], priority=i % 2).id
           for i in range(4)]
    rows, total = store.list(states=[QUEUED], limit=2)
    assert total == 4 and [row.id for row in rows] == ids[:1:-1]
    assert [job.id for job in store.in_states([QUEUED])] == [ids[1], ids[3], ids[0], ids[2]]
    assert store.queue_position(store.get(ids[0])) == 3
    store.engine.dispose()
    assert Store(store_url).get(ids[3]).name == "j3"  # the schema is there: a restart creates nothing


def test_the_whole_queue_and_usage_rows_survive_a_new_store(store_url: str):
    store = Store(store_url)
    with store.session() as session:
        session.bulk_insert_mappings(Job, [
            {"name": "j", "user": "flood", "phase": "train", "state": QUEUED, "priority": 0, "gpus_requested": 0,
             "hypes": {}, "overrides": [], "created_at": 0.0} for _ in range(1001)])
    limited = store.add(name="o", user="other", phase="train", hypes={}, overrides=[], time_limit_s=60.0,
                        cpu_slots=2, memory_mb=512, preemptible=False).id
    store.transition(1, [QUEUED], state=RUNNING)
    queue = store.queued()
    assert len(queue) == 1001 and queue[0].id == 2 and queue[-1].id == limited
    assert (queue[-1].time_limit_s, queue[-1].cpu_slots, queue[-1].memory_mb, queue[-1].preemptible) == (60.0, 2, 512, False)
    store.save_usage([{"user": "flood", "gpu_seconds": 10.0, "cpu_seconds": 2.5, "updated_at": 5.0, "last_start": 4.0}])
    store.save_usage([{"user": "flood", "gpu_seconds": 11.0, "cpu_seconds": 3.0, "updated_at": 6.0, "last_start": 4.0},
                      {"user": "other", "gpu_seconds": 0.0, "cpu_seconds": 1.0, "updated_at": 6.0, "last_start": None}])
    store.engine.dispose()
    rows = {row.user: row for row in Store(store_url).usage()}
    assert set(rows) == {"flood", "other"} and (rows["flood"].gpu_seconds, rows["flood"].updated_at) == (11.0, 6.0)


def test_the_queue_index_reads_what_changed_and_what_other_processes_wrote(tmp_path: Path, monkeypatch):
    """After the first read, ``queued`` reads only the rows this store wrote (a submission, a start, a requeue,
    a field changed); another store's writes (another process) show at the next whole read."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    store, other = Store(url), Store(url)
    first, second = (store.add(name=n, user="u", phase="train", hypes={}, overrides=[]).id for n in "ab")
    assert [row.id for row in store.queued()] == [first, second]
    reads: list[object] = []
    read = store._queued_rows
    monkeypatch.setattr(store, "_queued_rows", lambda ids: reads.append(ids) or read(ids))
    third = store.add(name="c", user="u", phase="train", hypes={}, overrides=[]).id
    store.transition(first, [QUEUED], state=RUNNING)
    store.update(second, priority=5)
    assert [(row.id, row.priority) for row in store.queued()] == [(second, 5), (third, 0)]
    assert reads == [{first, second, third}]
    store.transition(first, [RUNNING], state=QUEUED)
    assert [row.id for row in store.queued()] == [first, second, third] and reads[-1] == {first}
    assert store.queued() and len(reads) == 2  # nothing written: nothing read
    other.transition(third, [QUEUED], state=RUNNING)
    assert [row.id for row in store.queued()] == [first, second, third]  # not yet read again
    monkeypatch.setattr("services.jobs.store.QUEUE_REREAD_S", 0.0)
    assert [row.id for row in store.queued()] == [first, second] and reads[-1] is None
