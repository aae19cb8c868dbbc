"""People for the browser tests: an API client signed in through the front door as one user (its session
cookie and the CSRF token every state-changing call carries), and the page's sign-in form driven by a
browser tab."""
from __future__ import annotations

from typing import Any

import requests
from playwright.sync_api import expect


class Account:
    """``name`` signed in to the API at ``url`` (nginx) with a password, as the page is."""

    def __init__(self, url: str, name: str, password: str) -> None:
        self.url, self.name, self.password = url, name, password
        self.http = requests.Session()
        self.sign_in()

    def sign_in(self) -> None:
        reply = self.http.post(f"{self.url}/api/v1/auth/login", json={"name": self.name, "password": self.password},
                               timeout=30)
        assert reply.status_code == 200, reply.text
        self.csrf = reply.json()["csrf_token"]

    def call(self, method: str, path: str, expect_status: int | None = None, **kwargs: Any) -> requests.Response:
        """One API call; signed in again first when a sign-out in a browser ended this person's sessions."""
        if self.http.get(f"{self.url}/api/v1/auth/me", timeout=30).status_code == 401:
            self.sign_in()
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        reply = self.http.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs)
        if expect_status is not None:
            assert reply.status_code == expect_status, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply

    def submit(self, hypes: Any, **fields: Any) -> dict[str, Any]:
        return self.call("POST", "/jobs", 201, json={"hypes": hypes, **fields}).json()

    def job(self, job_id: int) -> dict[str, Any]:
        return self.call("GET", f"/jobs/{job_id}", 200).json()

    def add_user(self, name: str, password: str, role: str = "member", **fields: Any) -> Account:
        self.call("POST", "/users", 201, json={"name": name, "password": password, "role": role, **fields})
        return Account(self.url, name, password)

    def add_group(self, name: str, *members: str) -> None:
        self.call("POST", "/groups", 201, json={"name": name})
        for member in members:
            self.call("POST", f"/groups/{name}/members", 200, json={"user": member})


def sign_in(tab: Any, name: str, password: str, url: str = "/") -> None:
    """Open ``url`` and sign in with the page's form; returns once the header names the user."""
    tab.goto(url)
    tab.fill("#signin-name", name)
    tab.fill("#signin-password", password)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.locator("#account")).to_be_visible()
    expect(tab.locator("#signin-name")).to_have_count(0)


def sign_out(tab: Any) -> None:
    tab.locator("#account").get_by_role("button", name="Sign out").click()
    expect(tab.locator("#signin-name")).to_be_visible()
    expect(tab.locator("#account")).to_be_hidden()
