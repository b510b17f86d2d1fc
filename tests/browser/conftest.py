"""Browser fixtures: Daphne in a spawned process and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

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


@pytest.fixture
def page(browser: Any, vero_server: LiveServer, transactional_db: None) -> Iterator[Any]:
    context = browser.new_context(base_url=vero_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
