"""Offline: with the server unreachable, a reload opens the app from the service worker's
shell, the sidebar and the cached chats read from the encrypted cache, and the composer says it
is offline; back online, the page returns to the server's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from tests.browser.helpers import live_log_in, page_on
from tests.browser.paint_support import (
    WORKER_CONTROLS,
    cache_wait,
    chat_with_answer,
    chat_with_versions,
)
from tests.live_server import LiveServer, live_server_start


@pytest.fixture
def own_server(transactional_db: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    """A server of its own, which the test may stop."""
    with django_db_blocker.unblock():
        server = live_server_start()
    yield server
    server.stop()


@pytest.fixture
def own_page(browser: Any, own_server: LiveServer) -> Iterator[Page]:
    yield from page_on(browser, own_server)


def _cached_and_controlled(page: Page, alice: User, *chats: Any) -> None:
    live_log_in(page, alice)
    page.goto(f"/c/{chats[0].id}/")
    page.wait_for_function(WORKER_CONTROLS)
    for chat in chats:
        cache_wait(page, chat.id)
    # Once more, settled: the login page's cache (a guest's key) may have stored its key after
    # the next page stored the account's; the next page load stores the session's key again.
    page.reload()
    for chat in chats:
        cache_wait(page, chat.id)
    # The cache has opened (its key stored) and this tab leads before the test goes offline.
    page.wait_for_function("window.veroCache && window.veroCache.leader")


def test_with_the_server_stopped_a_reload_shows_the_sidebar_and_a_cached_chat(
    own_page: Page, own_server: LiveServer, alice: User
) -> None:
    chat, *_ = chat_with_versions(alice, "Plans for the trip")
    other = chat_with_answer(alice, "Grocery list", "milk and bread")
    _cached_and_controlled(own_page, alice, chat, other)

    own_server.stop()
    own_page.reload()

    expect(own_page.locator("html")).to_have_attribute("data-offline-ready", "")
    expect(own_page.locator("body")).to_have_attribute("data-app-shell", "")
    sidebar = own_page.locator("#chat-list")
    expect(sidebar.get_by_role("link", name="Plans for the trip")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Grocery list")).to_be_visible()
    messages = own_page.locator("#messages")
    expect(messages).to_contain_text("Plans for the trip: the question")
    expect(messages).to_contain_text("answer two")
    expect(messages).not_to_contain_text("answer one")
    composer = own_page.locator("#composer")
    expect(composer).to_contain_text("You are offline")
    expect(composer.locator("[data-send-button]")).to_be_disabled()


def test_offline_the_versions_and_the_other_cached_chats_open_from_the_cache(
    own_page: Page, own_server: LiveServer, alice: User
) -> None:
    chat, *_ = chat_with_versions(alice, "Plans for the trip")
    other = chat_with_answer(alice, "Grocery list", "milk and bread")
    _cached_and_controlled(own_page, alice, chat, other)
    own_server.stop()
    own_page.reload()
    expect(own_page.locator("html")).to_have_attribute("data-offline-ready", "")

    messages = own_page.locator("#messages")
    expect(messages).to_contain_text("answer two")
    own_page.get_by_role("button", name="Previous version").click()
    expect(messages).to_contain_text("answer one")
    expect(messages).not_to_contain_text("answer two")

    own_page.locator("#chat-list").get_by_role("link", name="Grocery list").click()
    expect(messages).to_contain_text("milk and bread")
    expect(own_page).to_have_url(re.compile(rf"/c/{other.id}/$"))
    expect(own_page.locator("#composer")).to_contain_text("You are offline")


def test_a_chat_the_cache_does_not_hold_says_so_offline(
    own_page: Page, own_server: LiveServer, alice: User
) -> None:
    chat = chat_with_answer(alice, "Kept", "kept answer")
    _cached_and_controlled(own_page, alice, chat)
    own_server.stop()
    own_page.goto("/c/00000000-0000-4000-8000-000000000000/")
    expect(own_page.locator("[data-shell-status]")).to_contain_text("not kept in this browser")
    expect(own_page.locator("#chat-list").get_by_role("link", name="Kept")).to_be_visible()


def test_back_online_the_shell_returns_to_the_servers_page(own_page: Page, alice: User) -> None:
    chat = chat_with_answer(alice, "Reading list", "three novels")
    _cached_and_controlled(own_page, alice, chat)

    own_page.context.set_offline(True)
    own_page.reload()
    expect(own_page.locator("body")).to_have_attribute("data-app-shell", "")
    expect(own_page.locator("#messages")).to_contain_text("three novels")

    own_page.context.set_offline(False)
    expect(own_page.locator("body")).not_to_have_attribute("data-app-shell", "", timeout=10_000)
    expect(own_page.locator("#messages")).to_contain_text("three novels")
    expect(own_page.locator("#composer")).not_to_contain_text("You are offline")
    expect(own_page.locator("[data-composer-text]")).to_be_enabled()
