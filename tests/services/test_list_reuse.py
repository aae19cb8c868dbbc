"""GET /api/v1/jobs reuses a page's body while the database is unchanged (services/api/reuse.py): what any
writer commits, this service or another process, shows in the next list; each caller's read rule keeps
its own page; a revoked token is refused even though its page is kept."""
from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.api.reuse import Bodies
from services.config import Settings
from services.jobs.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from live_service import FAKE_TASK, LiveService, make_hypes, port_range


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    settings = Settings(home=tmp_path_factory.mktemp("reuse") / "home", visdom_ports=port_range(10), gpus=(),
                        task_command=(sys.executable, FAKE_TASK), run_jobs=False, threads=4, component_check=())
    live = LiveService(settings)
    yield live
    live.close()


def listed(client, **params) -> dict:
    response = client.call("GET", "/api/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_commit_by_another_process_shows_in_the_next_list(service):
    job = service.submit(make_hypes(), name="before")
    first = service.call("GET", "/api/v1/jobs")
    assert first.content == service.call("GET", "/api/v1/jobs").content
    with sqlite3.connect(service.settings.home / "cauchy.db") as db:  # as a second process would write
        db.execute("UPDATE jobs SET name = 'after' WHERE id = ?", (job["id"],))
    page = listed(service)
    assert page["jobs"][0]["name"] == "after" and page["total"] == first.json()["total"]
    other = Store(service.settings.db_url)
    added = other.add(name="added", user="admin", phase="train", hypes={}, overrides=[])
    other.engine.dispose()
    page = listed(service)
    assert page["jobs"][0]["id"] == added.id and page["total"] == first.json()["total"] + 1
    assert listed(service, limit=1)["jobs"] == page["jobs"][:1]  # another page, another body
    assert listed(service, state="queued", user="nobody") == {"jobs": [], "total": 0, "limit": 50, "offset": 0}


def test_each_callers_page_follows_their_read_rule(service):
    ada, bob = service.as_user("ada"), service.as_user("bob")
    job = ada.submit(make_hypes(), name="ada's")
    assert job["id"] not in {j["id"] for j in listed(bob)["jobs"]}
    assert job["id"] in {j["id"] for j in listed(ada)["jobs"]}
    assert job["id"] in {j["id"] for j in listed(service)["jobs"]}
    assert ada.call("PATCH", f"/api/v1/jobs/{job['id']}", json={"visibility": "public"}).status_code == 200
    assert job["id"] in {j["id"] for j in listed(bob)["jobs"]}


def test_a_revoked_token_is_refused_though_its_page_is_kept(service):
    carol = service.as_user("carol")
    made = carol.call("POST", "/api/v1/tokens", json={"name": "script"}).json()
    as_script = {"Authorization": f"Bearer {made['token']}"}
    page = service.call("GET", "/api/v1/jobs", headers=as_script)
    assert page.status_code == 200 and listed(carol) == page.json()  # the same read rule: the page is kept
    assert carol.call("DELETE", f"/api/v1/tokens/{made['id']}").status_code == 204
    refused = service.call("GET", "/api/v1/jobs", headers=as_script)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_token"


def test_bodies_are_built_again_for_a_new_version_and_always_without_one():
    bodies, built = Bodies(), []

    def build() -> bytes:
        built.append(1)
        return b"%d" % len(built)

    assert [bodies.body(7, "page", build), bodies.body(7, "page", build)] == [b"1", b"1"]
    assert bodies.body(8, "page", build) == b"2" and bodies.body(7, "page", build) == b"3"
    assert [bodies.body(None, "page", build), bodies.body(None, "page", build)] == [b"4", b"5"]


def test_the_data_version_follows_every_commit_from_a_connection_of_its_own(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}")
    first = store.data_version()
    assert store.data_version() == first
    job = store.add(name="x", user="ada", phase="train", hypes={}, overrides=[])  # through the store's pool
    second = store.data_version()
    with sqlite3.connect(tmp_path / "jobs.db") as db:  # another process's commit
        db.execute("UPDATE jobs SET name = 'y' WHERE id = ?", (job.id,))
    assert len({first, second, store.data_version()}) == 3
    with sqlite3.connect(tmp_path / "jobs.db") as db:  # reading it holds no snapshot: the WAL can be emptied
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert store.engine.pool.checkedout() == 1  # its connection stays out of the pool: no query shares it
    store.engine.dispose()


def test_postgresql_has_no_data_version_so_every_list_queries(postgres):
    store = Store(postgres.new_database())
    assert store.data_version() is None
    store.add(name="x", user="ada", phase="train", hypes={}, overrides=[])
    assert store.data_version() is None and store.list()[1] == 1
    store.engine.dispose()
