"""Who sees what on the page, in a real browser through nginx: sign-in and its errors, each person's jobs
and the ones shared with their group, another person's job page and Visdom refused, the admin page,
access tokens made on the page used with ``Authorization: Bearer`` and revoked, and a page on another
origin that tries to stop a signed-in person's job (cross-site request forgery)."""
from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from accounts import Account, sign_in, sign_out
from playwright.sync_api import expect
from stack import FAKE_TASK, REPO, Stack, fast_settings, make_hypes
from stack import service_fixtures as live_service

pytestmark = pytest.mark.slow
DIGITS = "cls/image_classifier_smallcnn_digits.json"
PASSWORDS = {"alice": "alice's password", "bob": "bob's password", "carol": "carol's password"}


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, digits_dir: str) -> Iterator[Stack]:
    """The stand-in task (a "run" job keeps running until stopped), so the jobs here cost nothing."""
    live = Stack(fast_settings(tmp_path_factory.mktemp("access") / "home", task_command=(sys.executable, FAKE_TASK),
                               visdom_ports=live_service.port_range(20), data_roots=(REPO / "data", Path(digits_dir).parent)))
    yield live
    live.close()


@pytest.fixture(scope="module")
def people(admin: Account) -> dict[str, Account]:
    """alice and bob share the group "vision"; carol is in no group."""
    accounts = {name: admin.add_user(name, password, display_name=name.title()) for name, password in PASSWORDS.items()}
    admin.add_group("vision", "alice", "bob")
    return accounts


def job_rows(tab) -> list[int]:
    expect(tab.locator("table.jobs, .empty").first).to_be_visible()
    return sorted(int(row.get_attribute("data-job")) for row in tab.locator("table.jobs tbody tr").all())


def show_scope(tab, label: str, expected: list[int]) -> None:
    tab.locator('[aria-label="Whose jobs"]').get_by_role("button", name=label).click()
    expect(tab.locator('[aria-label="Whose jobs"] button.on')).to_have_text(label)
    expect(tab.locator("table.jobs tbody tr")).to_have_count(len(expected))
    assert job_rows(tab) == sorted(expected)


def test_sign_in_errors_are_said_in_the_form(page, front, people, shot):
    page.goto("/")
    expect(page.locator("#signin-name")).to_be_visible()
    assert page.request.get("/api/v1/auth/me").status == 401
    page.fill("#signin-name", "alice")
    page.fill("#signin-password", "not alice's password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("form.signin .form-error")).to_have_text("The name or password is not right.")
    expect(page.locator("#signin-password")).to_have_value("")
    expect(page.locator("#account")).to_be_hidden()
    shot(page, "access-1-bad-password")

    for _ in range(10):  # the service allows 10 failed sign-ins per name in a quarter of an hour
        guess = requests.post(f"{front.url}/api/v1/auth/login", json={"name": "mallory", "password": "a guess"},
                              timeout=30)
        assert guess.status_code == 401, guess.text
    page.fill("#signin-name", "mallory")
    page.fill("#signin-password", "one more guess")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("form.signin .form-error")).to_contain_text(re.compile(r"Too many failed sign-ins\. Try again in \d+ s\."))

    page.fill("#signin-name", "alice")
    page.fill("#signin-password", PASSWORDS["alice"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text("Alice")


def test_each_person_sees_their_own_and_shared_jobs(open_tab, front, people, digits_dir, shot):
    alice, carol = people["alice"], people["carol"]
    carols = carol.submit(make_hypes("run"), name="carol's private job")

    tab = open_tab()
    sign_in(tab, "alice", PASSWORDS["alice"])
    expect(tab.locator("#who")).to_have_text("Alice")
    expect(tab.locator('[data-nav="admin"]')).to_be_hidden()
    launched = []
    for name, visibility in (("alice private", "private"), ("alice for vision", "group:vision")):
        tab.goto("/#/launch")
        tab.select_option("#f-template", DIGITS)
        tab.fill("#f-data-data_dir", digits_dir)
        tab.fill("#f-name", name)
        expect(tab.locator("#f-visibility option")).to_have_text(["private (owner only)", "group vision", "public (everyone)"])
        tab.select_option("#f-visibility", visibility)
        expect(tab.locator('[data-field="priority"] .hint')).to_contain_text("-100 to 0")
        if visibility == "private":
            tab.fill("#f-priority", "5")
            tab.get_by_role("button", name="Launch").click()
            expect(tab.locator('[data-field="priority"] .field-error')).to_contain_text("a higher priority needs an admin")
            tab.fill("#f-priority", "0")
            shot(tab, "access-2-launch-visibility")
        tab.get_by_role("button", name="Launch").click()
        expect(tab.locator(".page-head h1")).to_contain_text(name)
        launched.append(int(tab.url.rsplit("/", 1)[1]))
    private, shared = launched
    assert alice.job(private)["visibility"] == "private" and alice.job(shared)["visibility"] == "group:vision"
    expect(tab.locator("#job-visibility")).to_have_value("group:vision")

    tab.goto("/#/jobs")
    show_scope(tab, "Mine", [private, shared])
    show_scope(tab, "Shared with me", [])
    show_scope(tab, "All I can see", [private, shared])
    expect(tab.locator(f'tr[data-job="{private}"] td[data-label="Owner"]')).to_have_text("alice")
    shot(tab, "access-3-alice-jobs")

    other = open_tab()
    sign_in(other, "bob", PASSWORDS["bob"])
    show_scope(other, "All I can see", [shared])
    show_scope(other, "Mine", [])
    show_scope(other, "Shared with me", [shared])
    row = other.locator(f'tr[data-job="{shared}"]')
    expect(row.get_by_role("link", name="Clone")).to_be_visible()
    expect(row.get_by_role("button")).to_have_count(0)  # neither stop nor resume: bob does not own it
    shot(other, "access-4-bob-shared")
    other.goto(f"/#/jobs/{shared}")
    expect(other.locator(".page-head h1")).to_contain_text("alice for vision")
    expect(other.locator("#job-visibility")).to_have_text("group vision")  # shown, not a control
    expect(other.locator(".page-head").get_by_role("button")).to_have_count(0)

    # Another person's private job: its page says there is no such job, its Visdom is refused.
    for job_id in (carols["id"], private):
        other.goto(f"/#/jobs/{job_id}")
        expect(other.locator(".notice.error")).to_contain_text(f"Could not load job {job_id}")
        assert other.request.get(f"/api/v1/jobs/{job_id}").status == 404
        assert other.request.get(f"/visdom/{job_id}/").status in (403, 404)
    shot(other, "access-5-not-yours")
    assert carol.call("GET", f"/jobs/{carols['id']}").status_code == 200

    # The owner takes the job back: bob no longer sees it.
    tab.goto(f"/#/jobs/{shared}")
    tab.select_option("#job-visibility", "private")
    expect(tab.locator(".visibility-editor [role=status]")).to_have_text("saved")
    assert alice.job(shared)["visibility"] == "private"
    other.goto("/#/jobs")
    show_scope(other, "All I can see", [])

    sign_out(tab)
    assert tab.request.get("/api/v1/auth/me").status == 401
    tab.goto("/#/jobs")
    expect(tab.locator("#signin-name")).to_be_visible()
    shot(tab, "access-6-signed-out")
    carol.call("POST", f"/jobs/{carols['id']}/stop", 202)


def test_admin_manages_people_and_groups_on_the_page(page, open_tab, admin, people, shot):
    sign_in(page, "admin", live_service.ADMIN_PASSWORD)
    page.get_by_role("link", name="Admin").click()
    users = page.locator("#users")
    expect(users.locator('tr[data-user="alice"]')).to_be_visible()
    page.fill("#u-name", "dora")
    page.fill("#u-display", "Dora D.")
    page.fill("#u-password", "dora's first password")
    users.get_by_role("button", name="Add user").click()
    dora = users.locator('tr[data-user="dora"]')
    expect(dora).to_contain_text("Dora D.")

    page.fill("#prio-dora", "20")
    page.locator("#prio-dora").dispatch_event("change")
    expect(page.locator("#prio-dora")).to_be_enabled()  # saved, and the list drawn again
    expect(page.locator("#prio-dora")).to_have_value("20")
    dora.get_by_role("button", name="Reset password").click()
    page.fill("#pw-dora", "dora's new password")
    dora.get_by_role("button", name="Set", exact=True).click()
    expect(dora.get_by_role("status")).to_have_text("password changed")

    groups = page.locator("#groups")
    page.fill("#g-name", "optics")
    groups.get_by_role("button", name="Add group").click()
    optics = groups.locator('tr[data-group="optics"]')
    optics.locator("select").select_option("dora")
    optics.get_by_label("group admin").check()
    optics.get_by_role("button", name="Add", exact=True).click()
    expect(optics.locator('[data-member="dora"]')).to_contain_text("★")
    expect(groups.locator('tr[data-group="vision"] [data-member="alice"]')).to_be_visible()
    shot(page, "access-7-admin")

    user = {u["name"]: u for u in admin.call("GET", "/users", 200).json()["users"]}["dora"]
    assert (user["display_name"], user["max_priority"], user["role"]) == ("Dora D.", 20, "member")
    assert "optics" in user["groups"]
    assert requests.post(f"{admin.url}/api/v1/auth/login", json={"name": "dora", "password": "dora's first password"},
                         timeout=30).status_code == 401
    # dora's launch form offers what the admin allowed; an admin's has the whole range.
    doras = open_tab()
    sign_in(doras, "dora", "dora's new password", "/#/launch")
    expect(doras.locator('[data-field="priority"] .hint')).to_have_text("-100 to 20; higher starts first")
    expect(doras.locator("#f-visibility option")).to_have_text(["private (owner only)", "group optics", "public (everyone)"])
    page.locator("#role-dora").select_option("admin")
    expect(page.locator('tr[data-user="dora"] td[data-label="Max priority"]')).to_have_text("any (up to 100)")
    doras.reload()
    expect(doras.locator('[data-field="priority"] .hint')).to_have_text("-100 to 100; higher starts first")
    expect(doras.locator('[data-nav="admin"]')).to_be_visible()
    page.locator("#role-dora").select_option("member")
    expect(page.locator("#prio-dora")).to_be_visible()

    optics.get_by_role("button", name="Remove dora from optics").click()
    expect(optics).to_contain_text("no members")
    assert "optics" not in {u["name"]: u for u in admin.call("GET", "/users", 200).json()["users"]}["dora"]["groups"]

    page.locator("#disabled-dora").check()
    expect(page.locator('tr[data-user="dora"]')).to_have_class("disabled")
    assert requests.post(f"{admin.url}/api/v1/auth/login", json={"name": "dora", "password": "dora's new password"},
                         timeout=30).status_code == 401


def test_a_token_made_on_the_page_works_until_revoked(page, front, people, shot):
    sign_in(page, "carol", PASSWORDS["carol"], "/#/tokens")
    expect(page.locator(".page-head h1")).to_have_text("Access tokens")
    page.fill("#token-name", "carol's laptop")
    page.select_option("#token-expiry", "30")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert len(token) >= 20
    expect(page.locator(".token-once")).to_contain_text("shown only this once")
    row = page.locator("table.tokens tbody tr", has_text="carol's laptop")
    expect(row.locator('td[data-label="Last used"]')).to_have_text("never")
    expect(row.locator('td[data-label="Expires"]')).not_to_have_text("never")
    shot(page, "access-8-token-created")

    bearer = {"Authorization": f"Bearer {token}"}
    me = requests.get(f"{front.url}/api/v1/auth/me", headers=bearer, timeout=30)
    assert me.status_code == 200 and me.json()["user"]["name"] == "carol"
    made = requests.post(f"{front.url}/api/v1/jobs", headers=bearer, json={"hypes": make_hypes("ok"), "name": "by token"}, timeout=30)
    assert made.status_code == 201 and made.json()["user"] == "carol", made.text

    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)  # never shown again
    expect(row.locator('td[data-label="Last used"]')).not_to_have_text("never")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_have_count(0)
    assert requests.get(f"{front.url}/api/v1/jobs", headers=bearer, timeout=30).status_code == 401


ATTACK = """<!doctype html><title>cute cats</title>
<img src="{front}/cauchy/stop_training?pid={job}">
<iframe name="sink"></iframe>
<form id="post" method="POST" action="{front}/api/v1/jobs/{job}/stop" target="sink"></form>
<script>
fetch("{front}/api/v1/jobs/{job}/stop", {{method: "POST", credentials: "include"}}).catch(() => null);
document.getElementById("post").submit();
</script>"""


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second tiny web server on another port of 127.0.0.1: another origin, the same site (so SameSite
    cookies still go along and only the CSRF check can stop the requests)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", tmp_path
    server.shutdown()
    server.server_close()


def attack_requests(log: Path, referer: str) -> list[tuple[str, str, int]]:
    """(method, path, status) of each request nginx logged as coming from ``referer`` (a cross-origin request
    names only the origin), read from nginx's default "combined" log format."""
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        match = re.search(r'"(\w+) (\S+) HTTP/[\d.]+" (\d{3}) \S+ "([^"]*)"', line)
        if match and match[4].startswith(referer):
            found.append((match[1], match[2], int(match[3])))
    return found


def wait_state(account: Account, job_id: int, state: str) -> None:
    deadline = time.monotonic() + 60
    while account.job(job_id)["state"] != state:
        assert time.monotonic() < deadline, f"job {job_id} never became {state}: {account.job(job_id)}"
        time.sleep(0.1)


def test_a_page_on_another_origin_cannot_stop_a_signed_in_persons_job(page, front, people, other_origin, shot):
    alice = people["alice"]
    job = alice.submit(make_hypes("run"), name="must keep running")
    wait_state(alice, job["id"], "running")
    sign_in(page, "alice", PASSWORDS["alice"], f"/#/jobs/{job['id']}")
    expect(page.locator(".page-head .badge")).to_have_text("running")

    origin, root = other_origin
    (root / "cats.html").write_text(ATTACK.format(front=front.url, job=job["id"]), encoding="utf-8")
    page.goto(f"{origin}/cats.html")
    # What nginx answered the image, the fetch and the form (Chromium hides the replies from the page).
    log = front.door.prefix / "logs" / "access.log"
    deadline = time.monotonic() + 30
    while len(answered := attack_requests(log, origin)) < 3:
        assert time.monotonic() < deadline, answered
        page.wait_for_timeout(100)
    shot(page, "access-9-csrf-page")
    assert sorted((method, path) for method, path, _ in answered) == [
        ("GET", f"/cauchy/stop_training?pid={job['id']}"), ("POST", f"/api/v1/jobs/{job['id']}/stop"),
        ("POST", f"/api/v1/jobs/{job['id']}/stop")], answered
    assert [status for method, _, status in answered if method == "POST"] == [403, 403], answered
    assert alice.job(job["id"])["state"] == "running"
    # The legacy endpoints never take the cookie: the image's request was refused (in their 200 reply shape).
    legacy = alice.http.get(f"{front.url}/cauchy/stop_training", params={"pid": job["id"]}, timeout=30).json()
    assert legacy["code"] == "100401", legacy
    assert alice.job(job["id"])["state"] == "running"

    # The same browser is signed in, and the page itself (with its CSRF token) does stop the job.
    page.goto(f"{front.url}/#/jobs/{job['id']}")
    expect(page.locator("#who")).to_have_text("Alice")
    page.locator(".page-head").get_by_role("button", name="Stop").click()
    expect(page.locator(".page-head .badge")).to_have_text("stopped", timeout=30_000)
