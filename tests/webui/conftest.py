"""Debian's chromium, driven by playwright, against nginx in front of a live service (``front``: real jobs
by default; a module may override ``front`` with a stack of its own).

Screenshots go to ``test-artifacts/webui/`` (git-ignored) for a person to look at.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nginx"))
from accounts import Account
from stack import REPO, Stack, fast_settings
from stack import service_fixtures as live_service

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "webui"
ADMIN_PASSWORD = live_service.ADMIN_PASSWORD  # the first admin's, made by LiveService
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/system_packages.sh (make test does)")
    with sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def real_stack(tmp_path_factory: pytest.TempPathFactory, digits_dir: str) -> Iterator[Stack]:
    """One CPU slot, so a second job waits in the queue; the real run_tasks.py; jobs may read the digits."""
    settings = fast_settings(tmp_path_factory.mktemp("webui") / "home", cpu_slots=1,
                             task_command=(sys.executable, "run_tasks.py"), stop_grace_s=60.0,
                             visdom_ports=live_service.port_range(20), data_roots=(REPO / "data", Path(digits_dir).parent))
    live = Stack(settings)
    yield live
    live.close()


@pytest.fixture(scope="module")
def front(real_stack: Stack) -> Stack:
    """The stack the pages are opened on."""
    return real_stack


@pytest.fixture(scope="module")
def admin(front: Stack) -> Account:
    return Account(front.url, "admin", ADMIN_PASSWORD)


@pytest.fixture
def open_tab(browser, front: Stack) -> Iterator:
    """``open_tab()``: a tab in a browser context of its own (its own cookies: one person) on the front door."""
    contexts, errors = [], []

    def open_() -> object:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=front.url)
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        return tab

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(open_tab) -> object:
    return open_tab()


@pytest.fixture
def shot():
    """``shot(page, name)``: a full-page screenshot under test-artifacts/webui/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(tab, name: str) -> None:
        tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take
