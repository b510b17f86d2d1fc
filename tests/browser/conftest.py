"""Browser fixtures: Daphne in a spawned process and Debian's Chromium driven by Playwright.

Fixtures and pytest hooks only; the plain helpers they use live in `tests/browser/helpers.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import User
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, live_password_set, page_on
from tests.live_server import LiveServer, live_server_start


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


@pytest.fixture
def page(browser: Any, vero_server: LiveServer, transactional_db: None) -> Iterator[Any]:
    yield from page_on(browser, vero_server)


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
        yield from page_on(browser, server)
    finally:
        server.stop()


@pytest.fixture
def live_admin(admin_user: User) -> User:
    """The admin persona, able to log in through the live server's login form."""
    live_password_set(admin_user)
    return admin_user
