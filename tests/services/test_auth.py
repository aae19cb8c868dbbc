"""Identity: accounts on SQLite and PostgreSQL, sign-in and its cookie, CSRF, rate limits, tokens (hashed
at rest, expiry, revocation, last use), the first admin, the upgrade of an older home, Host, priority
and visibility rules."""
from __future__ import annotations

import hashlib
import hmac
import json
import stat
import time
from pathlib import Path

import pytest
import requests
from live_service import TEST_HASHER, LiveService
from sqlalchemy import create_engine, text

from cauchy.manifest import MANIFEST, read_manifest
from services.app import create_app
from services.auth.access import readable_by
from services.auth.accounts import Accounts
from services.auth.models import Token
from services.auth.secrets import ADMIN_PASSWORD_FILE
from services.jobs.store import Job, Store

DIGITS = "cls/image_classifier_smallcnn_digits.json"


def error_code(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["code"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_accounts_groups_tokens_and_the_readable_list(settings):
    settings.home.mkdir(parents=True)
    store = Store(settings.db_url)
    accounts = Accounts(store, b"k" * 32, TEST_HASHER)
    ada = accounts.create_user("ada", "ada-password", "member", "Ada", 2)
    accounts.create_user("bob", "bob-password")
    with pytest.raises(Exception, match="a user named 'ada' exists"):
        accounts.create_user("ada", "another-password")
    accounts.create_group("vision")
    accounts.set_member("vision", "bob", True)
    assert accounts.verify_password("ada", "ada-password").id == ada.id
    assert accounts.verify_password("ada", "wrong-password") is None and accounts.verify_password("zed", "x") is None
    new = accounts.create_token(ada.id, "laptop")
    caller = accounts.caller_for_token(new.secret)
    assert caller.name == "ada" and caller.max_priority == 2 and caller.groups == frozenset()
    bob = accounts.caller_for_token(accounts.create_token(accounts.user("bob").id, "ci").secret)
    assert bob.groups == {"vision"} and accounts.is_group_admin(bob, "vision")
    # Jobs: what each may list is one query.
    for name, owner, visibility in [("a1", "ada", "private"), ("a2", "ada", "group:vision"), ("b1", "bob", "private"),
                                    ("p", "eve", "public")]:
        store.add(name=name, user=owner, visibility=visibility, phase="train", hypes={}, overrides=[])
    names = lambda who: sorted(j.name for j in store.list(where=readable_by(who, Job.user, Job.visibility))[0])  # noqa: E731
    assert names(caller) == ["a1", "a2", "p"] and names(bob) == ["a2", "b1", "p"]
    accounts.update_user("ada", {"disabled": True})
    assert accounts.caller_for_token(new.secret) is None and accounts.verify_password("ada", "ada-password") is None
    with pytest.raises(Exception, match="unknown field 'colour'"):
        accounts.update_user("bob", {"colour": "red"})
    store.engine.dispose()


def test_sign_in_cookie_and_csrf(service):
    service.as_user("ada", password="ada-password")
    browser = requests.Session()
    assert error_code(browser.post(service.url + "/api/v1/auth/login", json={"name": "ada", "password": "nope-nope"}),
                      401) == "bad_credentials"
    signed_in = browser.post(service.url + "/api/v1/auth/login", json={"name": "ada", "password": "ada-password"})
    assert signed_in.status_code == 200 and signed_in.json()["user"]["name"] == "ada"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    csrf = signed_in.json()["csrf_token"]
    assert browser.get(service.url + "/api/v1/auth/me").json() == {"user": signed_in.json()["user"], "csrf_token": csrf}
    # A cookie request that changes something needs the CSRF header.
    assert error_code(browser.post(service.url + "/api/v1/tokens", json={"name": "x"}), 403) == "csrf_failed"
    assert error_code(browser.post(service.url + "/api/v1/jobs", json={"hypes": DIGITS},
                                   headers={"X-CSRF-Token": "forged"}), 403) == "csrf_failed"
    assert browser.post(service.url + "/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 201
    # Over https (nginx says so), the cookie is Secure.
    secure = requests.post(service.url + "/api/v1/auth/login", json={"name": "ada", "password": "ada-password"},
                           headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in secure.headers["Set-Cookie"]
    # A new password ends the sessions signed in with the old one.
    service.accounts.update_user("ada", {"password": "new-ada-password"})
    assert error_code(browser.get(service.url + "/api/v1/auth/me"), 401) == "unauthenticated"


def test_logout_and_the_legacy_endpoints_ignore_the_cookie(service, fake_hypes):
    service.as_user("ada", password="ada-password")
    ada = service.as_user("ada")
    job = ada.submit(fake_hypes("run"))
    browser = requests.Session()
    browser.post(service.url + "/api/v1/auth/login", json={"name": "ada", "password": "ada-password"})
    stop = browser.get(service.url + "/cauchy/stop_training", params={"pid": job["id"]}).json()
    assert stop["code"] == "100401" and service.job(job["id"])["state"] in ("queued", "running")
    by_token = browser.get(service.url + "/cauchy/stop_training", params={"pid": job["id"], "token": ada.token}).json()
    assert by_token["code"] == "100200"
    csrf = browser.get(service.url + "/api/v1/auth/me").json()["csrf_token"]
    copied = requests.Session()  # the same cookie, kept elsewhere (another tab, or stolen)
    copied.cookies.update(browser.cookies)
    assert copied.get(service.url + "/api/v1/auth/me").status_code == 200
    assert browser.post(service.url + "/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert browser.get(service.url + "/api/v1/auth/me").status_code == 401
    assert copied.get(service.url + "/api/v1/auth/me").status_code == 401  # signing out ended the session itself
    again = browser.post(service.url + "/api/v1/auth/login", json={"name": "ada", "password": "ada-password"})
    assert again.status_code == 200 and browser.get(service.url + "/api/v1/auth/me").status_code == 200
    service.wait_ended(job["id"])


def test_failed_sign_ins_are_limited_per_name_and_per_address(service):
    service.as_user("ada", password="ada-password")
    login = lambda name, password, address: requests.post(  # noqa: E731
        service.url + "/api/v1/auth/login", json={"name": name, "password": password}, headers={"X-Real-IP": address})
    for _ in range(10):
        assert login("ada", "wrong-password", "10.0.0.1").status_code == 401
    locked = login("ada", "ada-password", "10.0.0.2")  # the right password, from elsewhere: still locked
    assert error_code(locked, 429) == "rate_limited" and int(locked.headers["Retry-After"]) > 0
    for i in range(50):
        assert login(f"guess{i}", "wrong-password", "10.0.0.3").status_code == 401
    assert error_code(login("someone", "wrong-password", "10.0.0.3"), 429) == "rate_limited"
    assert login("someone", "wrong-password", "10.0.0.4").status_code == 401


def test_tokens_are_hashed_at_rest_expire_and_revoke(service):
    ada = service.as_user("ada")
    made = ada.call("POST", "/api/v1/tokens", json={"name": "script", "expires_in_days": 1}).json()
    secret = made["token"]
    assert secret.startswith("cau_") and made["expires_at"] - made["created_at"] == pytest.approx(86400)
    raw = Path(service.settings.home / "cauchy.db").read_bytes()
    assert secret.encode() not in raw
    with service.accounts.store.session() as session:
        stored = session.get(Token, made["id"])
        assert stored.hash == hmac.new(service.accounts.token_key, secret.encode(), hashlib.sha256).hexdigest()
        assert stored.last_used_at is None
    as_script = {"Authorization": f"Bearer {secret}"}
    assert service.call("GET", "/api/v1/auth/me", headers=as_script).json()["user"]["name"] == "ada"
    listed = {t["id"]: t for t in ada.call("GET", "/api/v1/tokens").json()["tokens"]}
    assert listed[made["id"]]["last_used_at"] is not None and "token" not in listed[made["id"]]
    # Another user can neither see nor revoke it.
    bob = service.as_user("bob")
    assert made["id"] not in {t["id"] for t in bob.call("GET", "/api/v1/tokens").json()["tokens"]}
    assert bob.call("DELETE", f"/api/v1/tokens/{made['id']}").status_code == 404
    # Expired: a token of a few seconds works, then no more.
    short = ada.call("POST", "/api/v1/tokens", json={"name": "short", "expires_in_days": 5 / 86400}).json()
    as_short = {"Authorization": f"Bearer {short['token']}"}
    assert service.call("GET", "/api/v1/auth/me", headers=as_short).status_code == 200
    time.sleep(max(short["expires_at"] - time.time(), 0) + 0.1)
    assert error_code(service.call("GET", "/api/v1/auth/me", headers=as_short), 401) == "invalid_token"
    # Revoked.
    other = ada.call("POST", "/api/v1/tokens", json={"name": "other"}).json()
    assert ada.call("DELETE", f"/api/v1/tokens/{other['id']}").status_code == 204
    assert error_code(service.call("GET", "/api/v1/jobs", headers={"Authorization": f"Bearer {other['token']}"}),
                      401) == "invalid_token"
    assert error_code(service.call("GET", "/api/v1/jobs", headers={"Authorization": "Basic x"}), 401) == "unauthenticated"
    for body, field in [({"name": ""}, "name"), ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
                        ({"name": "x", "scope": "all"}, "scope")]:
        assert ada.call("POST", "/api/v1/tokens", json=body).json()["error"]["field"] == field


def test_first_admin_from_the_environment_or_generated_once(tmp_path, settings, capfd):
    app = create_app(settings.replace(home=tmp_path / "a", admin_password="from-the-environment", run_jobs=False),
                     password_hasher=TEST_HASHER)
    accounts = app.extensions["cauchy"].accounts
    assert accounts.verify_password("admin", "from-the-environment").role == "admin"
    assert not (tmp_path / "a" / ADMIN_PASSWORD_FILE).exists()
    accounts.store.engine.dispose()
    home = tmp_path / "b"
    app = create_app(settings.replace(home=home, run_jobs=False), password_hasher=TEST_HASHER)
    path = home / ADMIN_PASSWORD_FILE
    password = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE((home / "secret_key").stat().st_mode) == 0o600
    assert password in capfd.readouterr().err
    assert app.extensions["cauchy"].accounts.verify_password("admin", password) is not None
    app.extensions["cauchy"].store.engine.dispose()
    again = create_app(settings.replace(home=home, run_jobs=False), password_hasher=TEST_HASHER)  # no second admin
    assert [u.name for u, _ in again.extensions["cauchy"].accounts.users()] == ["admin"]
    assert password not in capfd.readouterr().err and path.read_text().strip() == password
    again.extensions["cauchy"].store.engine.dispose()


def test_an_older_home_gives_its_jobs_and_weights_to_the_admin(settings, service_factory):
    home = settings.home
    (home / "weights").mkdir(parents=True)
    (home / "weights" / MANIFEST).write_text(json.dumps({"weights": [{"name": "old", "file": "old.pth"}]}))
    with create_engine(settings.db_url).begin() as conn:
        conn.execute(text("CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(200), "
                          "user VARCHAR(100), phase VARCHAR(20), state VARCHAR(20), priority INTEGER, "
                          "gpus_requested INTEGER, gpus VARCHAR(100), hypes JSON, overrides JSON, created_at FLOAT)"))
        conn.execute(text("INSERT INTO jobs (name, user, phase, state, priority, gpus_requested, gpus, hypes, "
                          "overrides, created_at) VALUES ('old', 'mallory', 'train', 'succeeded', 0, 0, '', '{}', '[]', 1.0)"))
    service = service_factory(settings.replace(run_jobs=False))
    job = service.job(1)
    assert job["user"] == "admin" and job["visibility"] == "private"
    assert service.as_user("mallory").call("GET", "/api/v1/jobs/1").status_code == 404
    assert read_manifest(home / "weights") == [{"name": "old", "file": "old.pth", "owner": "admin", "visibility": "public"}]
    indexes = {index["name"] for index in __import__("sqlalchemy").inspect(service.accounts.store.engine).get_indexes("jobs")}
    assert {"ix_jobs_user_id", "ix_jobs_visibility_id"} <= indexes


def test_only_allowed_hosts_are_answered(settings, service_factory):
    service = service_factory(settings.replace(allowed_hosts=("cauchy.example", "127.0.0.1", "box:8080"), run_jobs=False))
    for host, status in [("cauchy.example", 200), ("Cauchy.Example:443", 200), ("127.0.0.1:1234", 200),
                         ("box:8080", 200), ("box:9090", 400), ("evil.example", 400), ("localhost", 400)]:
        assert service.call("GET", "/api/v1/health", headers={"Host": host}).status_code == status, host
    assert error_code(service.call("GET", "/api/v1/jobs", headers={"Host": "rebound.evil"}), 400) == "bad_host"


def test_priority_needs_an_admins_allowance_and_sharing_needs_membership(settings, service_factory, fake_hypes):
    service = service_factory(settings.replace(run_jobs=False))
    ada = service.as_user("ada", groups=("vision",))
    bob = service.as_user("bob", groups=("vision",))
    eve = service.as_user("eve")
    refused = ada.call("POST", "/api/v1/jobs", json={"hypes": fake_hypes(), "priority": 1})
    assert error_code(refused, 403) == "priority_not_allowed" and service.call("GET", "/api/v1/jobs").json()["total"] == 0
    assert ada.call("POST", "/api/v1/jobs", json={"hypes": fake_hypes(), "priority": -5}).status_code == 201
    assert service.call("PATCH", "/api/v1/users/ada", json={"max_priority": 3}).json()["max_priority"] == 3
    assert ada.call("GET", "/api/v1/auth/me").json()["user"]["max_priority"] == 3
    assert ada.submit(fake_hypes(), priority=3)["priority"] == 3
    assert service.submit(fake_hypes(), priority=100)["priority"] == 100
    # Visibility: a group one is in, else refused.
    shared = ada.submit(fake_hypes(), visibility="group:vision")
    assert error_code(eve.call("POST", "/api/v1/jobs", json={"hypes": fake_hypes(), "visibility": "group:vision"}),
                      400) == "unknown_group"
    assert bob.call("GET", f"/api/v1/jobs/{shared['id']}").status_code == 200
    assert eve.call("GET", f"/api/v1/jobs/{shared['id']}").status_code == 404
    assert error_code(bob.call("PATCH", f"/api/v1/jobs/{shared['id']}", json={"visibility": "public"}), 403) == "forbidden"
    assert ada.call("PATCH", f"/api/v1/jobs/{shared['id']}", json={"visibility": "public"}).json()["visibility"] == "public"
    assert eve.call("GET", f"/api/v1/jobs/{shared['id']}").status_code == 200
    assert ada.call("PATCH", f"/api/v1/jobs/{shared['id']}", json={"visibility": "friends"}).status_code == 400
    # Only an admin submits for someone else; testing from a job needs reading it.
    assert error_code(eve.call("POST", "/api/v1/jobs", json={"hypes": fake_hypes(), "user": "ada"}), 403) == "forbidden"
    assert service.submit(fake_hypes(), user="ada")["user"] == "ada"
    private = ada.submit(fake_hypes())
    hidden = eve.call("POST", "/api/v1/jobs", json={"hypes": fake_hypes(), "phase": "test", "from_job": private["id"]})
    assert error_code(hidden, 400) == "unknown_job"
    listed = {job["id"] for job in eve.call("GET", "/api/v1/jobs").json()["jobs"]}
    assert listed == {shared["id"]}


def test_admins_manage_users_and_groups_and_group_admins_their_members(service):
    member = service.as_user("max")
    assert error_code(member.call("GET", "/api/v1/users"), 403) == "forbidden"
    made = service.call("POST", "/api/v1/users", json={"name": "kim", "password": "kims-password", "display_name": "Kim"})
    assert made.status_code == 201 and made.json()["role"] == "member"
    assert error_code(service.call("POST", "/api/v1/users", json={"name": "kim", "password": "kims-password"}), 409) == "conflict"
    assert service.call("POST", "/api/v1/users", json={"name": "no spaces", "password": "x" * 8}).json()["error"]["field"] == "name"
    assert service.call("POST", "/api/v1/users", json={"name": "short", "password": "x"}).json()["error"]["field"] == "password"
    assert error_code(service.call("PATCH", "/api/v1/users/admin", json={"role": "member"}), 409) == "conflict"
    assert service.call("PATCH", "/api/v1/users/nobody", json={"disabled": True}).status_code == 404
    assert service.call("POST", "/api/v1/groups", json={"name": "vision"}).status_code == 201
    assert service.call("POST", "/api/v1/groups/vision/members", json={"user": "kim", "admin": True}).status_code == 200
    kim = service.as_user("kim")
    assert kim.call("POST", "/api/v1/groups/vision/members", json={"user": "max"}).json()["members"] == [
        {"user": "kim", "admin": True}, {"user": "max", "admin": False}]
    assert error_code(member.call("DELETE", "/api/v1/groups/vision/members/kim"), 403) == "forbidden"
    assert kim.call("DELETE", "/api/v1/groups/vision/members/max").status_code == 200
    assert service.call("DELETE", "/api/v1/groups/vision/members/max").status_code == 404
    assert service.call("POST", "/api/v1/groups/vision/members", json={"user": "ghost"}).json()["error"]["field"] == "user"
    users = {u["name"]: u for u in service.call("GET", "/api/v1/users").json()["users"]}
    assert users["kim"]["groups"] == ["vision"] and users["admin"]["role"] == "admin"
    assert service.call("PATCH", "/api/v1/users/kim", json={"disabled": True}).json()["disabled"] is True
    assert error_code(kim.call("GET", "/api/v1/auth/me"), 401) == "invalid_token"


def test_the_bench_switch_is_python_only(settings):
    live = LiveService(settings.replace(run_jobs=False), without_auth_for_benchmark=True)
    try:
        assert requests.get(live.url + "/api/v1/auth/me").json()["user"]["name"] == "admin"
    finally:
        live.close()
    assert "without_auth" not in json.dumps(sorted(vars(settings)))  # no setting turns it on
