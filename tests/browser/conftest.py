"""Browser fixtures: Daphne in a spawned process and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from accounts.models import User
from tests.conftest import PASSWORD
from tests.live_server import LiveServer, live_server_start

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def vero_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    """Daphne serving the app against the test database, for the whole session."""
    with django_db_blocker.unblock():
        server = live_server_start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium.sh (make test does)")
    # Playwright's sync API keeps an event loop on this thread; Django would then refuse the
    # tests' own ORM calls. Allowed here only, for browser tests.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()
    playwright.stop()


def _page_on(browser: Any, server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def page(browser: Any, vero_server: LiveServer, transactional_db: None) -> Iterator[Any]:
    yield from _page_on(browser, vero_server)


@pytest.fixture
def fresh_server_page(
    browser: Any, transactional_db: None, django_db_blocker: Any
) -> Iterator[Any]:
    """A page on a Daphne server of its own, for tests that write through Django's admin.

    Each transactional test ends with a flush that recreates the content types under new ids,
    while a long-lived server keeps the old ids in ContentType's cache; the admin's log entry
    for the next add or change then violates its foreign key. A fresh process has no cache.
    """
    with django_db_blocker.unblock():
        server = live_server_start()
    try:
        yield from _page_on(browser, server)
    finally:
        server.stop()


def live_password_set(user: User) -> None:
    """Hash the shared test password with the live server's default hasher (PBKDF2).

    The test process hashes with MD5 for speed (tests/conftest.py), which the spawned server
    does not accept, so a persona that logs in through a browser needs a real hash.
    """
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])


def live_log_in(page: Any, user: User) -> None:
    """Log `user` in through the live server's login form, as a person would."""
    live_password_set(user)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/")


@pytest.fixture
def live_admin(admin_user: User) -> User:
    """The admin persona, able to log in through the live server's login form."""
    live_password_set(admin_user)
    return admin_user
