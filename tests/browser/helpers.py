"""Helpers for browser tests: Chromium's path and flags, a page on a server, logging in.

Plain functions, imported by tests and by `tests/browser/conftest.py`, whose fixtures use them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.hashers import PBKDF2PasswordHasher

from accounts.models import User
from tests.helpers import PASSWORD
from tests.live_server import LiveServer

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


def page_on(browser: Any, server: LiveServer) -> Iterator[Any]:
    """Yield a page of a fresh browser context on `server`; the context closes afterwards."""
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


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
