"""Painting from the cache: a click on a cached chat shows it before any request, the server's
page then replacing it; a version switch in a cached chat shows at once, is persisted through
the select endpoint, and is undone (with the server's message) when the server refuses it."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, Route, expect

from accounts.models import User
from tests.browser.helpers import live_log_in
from tests.browser.paint_support import cache_wait, chat_with_answer, chat_with_versions

# Records, in the page's clock, when each XMLHttpRequest and fetch starts and when the cache
# painted a chat (static/js/cache/paint.js's vero:cache-painted).
TIMELINE = """
window.__timeline = { requests: [], painted: [] };
const open = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url, ...rest) {
  window.__timeline.requests.push({ url: String(url), at: performance.now() });
  return open.call(this, method, url, ...rest);
};
const originalFetch = window.fetch;
window.fetch = function (input, init) {
  window.__timeline.requests.push({ url: String(input.url || input), at: performance.now() });
  return originalFetch.call(this, input, init);
};
document.addEventListener("vero:cache-painted", (event) => {
  window.__timeline.painted.push({ chat: event.detail.chat, at: performance.now() });
});
"""


def _hold(page: Page, pattern: str | re.Pattern[str]) -> list[Route]:
    """Hold every request matching `pattern` until the test lets it go."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route(pattern, hold)
    return held


def _open(page: Page, alice: User, chat: Any, *cached: Any) -> None:
    page.add_init_script(TIMELINE)
    live_log_in(page, alice)
    page.goto(f"/c/{chat.id}/")
    for each in (chat, *cached):
        cache_wait(page, each.id)


def test_a_click_on_a_cached_chat_paints_it_before_any_request(page: Page, alice: User) -> None:
    here = chat_with_answer(alice, "Where I am", "the current answer")
    there = chat_with_answer(alice, "Whales", "the blue whale is the largest")
    _open(page, alice, here, there)
    # htmx asks for the page with the tree version the page shows (?version=...).
    held = _hold(page, re.compile(rf"/c/{there.id}/(\?.*)?$"))
    page.evaluate("window.__timeline.requests = []")

    page.locator("#chat-list").get_by_role("link", name="Whales").click()

    painted = page.locator("#messages article[data-cache-painted]", has_text="the blue whale")
    expect(painted).to_be_visible()
    expect(page.locator("#chat-title")).to_contain_text("Whales")
    timeline = page.evaluate("window.__timeline")
    paint_at = next(p["at"] for p in timeline["painted"] if p["chat"] == str(there.id))
    # Nothing the click asked for came before the paint (the leader may sync meanwhile).
    clicked = [r for r in timeline["requests"] if not r["url"].startswith("/api/cache/")]
    assert [r for r in clicked if r["at"] <= paint_at] == []
    # The server's page comes after the paint and replaces it.
    page.wait_for_timeout(50)
    assert len(held) == 1
    held[0].continue_()
    from_server = page.locator("#messages article:not([data-cache-painted])", has_text="blue")
    expect(from_server).to_be_visible()
    expect(page.locator("[data-composer-text]")).to_be_enabled()
    expect(page).to_have_url(re.compile(rf"/c/{there.id}/"))


def test_a_chat_the_cache_does_not_hold_opens_from_the_server_alone(
    page: Page, alice: User
) -> None:
    here = chat_with_answer(alice, "Where I am", "the current answer")
    there = chat_with_answer(alice, "Elsewhere", "only on the server")
    _open(page, alice, here, there)
    # A cache that holds none of them (a chat created since the last sync, say).
    page.evaluate("window.veroCache.ready.then((cache) => { cache.chatGet = async () => null; })")

    page.locator("#chat-list").get_by_role("link", name="Elsewhere").click()

    expect(page.locator("#messages")).to_contain_text("only on the server")
    expect(page).to_have_url(re.compile(rf"/c/{there.id}/"))
    assert page.evaluate("window.__timeline.painted.length") == 0


def test_switching_versions_paints_at_once_and_persists_the_selection(
    page: Page, alice: User
) -> None:
    chat, question, _first, _second = chat_with_versions(alice, "Versions")
    _open(page, alice, chat)
    held = _hold(page, "**/select")

    page.get_by_role("button", name="Previous version").click()

    messages = page.locator("#messages")
    expect(messages.locator("article[data-cache-painted]", has_text="answer one")).to_be_visible()
    expect(messages).not_to_contain_text("answer two")
    expect(messages.locator(".version-count")).to_have_text("1/2")
    page.wait_for_timeout(50)
    assert len(held) == 1
    held[0].continue_()
    from_server = messages.locator("article:not([data-cache-painted])", has_text="answer one")
    expect(from_server).to_be_visible()
    question.refresh_from_db()
    assert question.selected_child_index == 0


def test_a_switch_the_server_refuses_is_rolled_back_with_its_message(
    page: Page, alice: User
) -> None:
    chat, *_ = chat_with_versions(alice, "Versions")
    _open(page, alice, chat)
    held = _hold(page, "**/select")

    page.get_by_role("button", name="Previous version").click()

    messages = page.locator("#messages")
    expect(messages.locator("article[data-cache-painted]", has_text="answer one")).to_be_visible()
    page.wait_for_timeout(50)
    # The server's refusal of a busy chat, as chats.responses.error_response renders it.
    held[0].fulfill(
        status=409,
        headers={"HX-Retarget": "#composer-error", "HX-Reswap": "innerHTML"},
        content_type="text/html",
        body='<p class="form-error" role="alert">Wait for the answer to finish.</p>',
    )
    expect(messages).to_contain_text("answer two")
    expect(messages).not_to_contain_text("answer one")
    expect(messages.locator(".version-count")).to_have_text("2/2")
    expect(page.locator("#composer-error")).to_contain_text("Wait for the answer to finish.")


def test_a_switch_that_reaches_no_server_is_rolled_back_and_says_so(
    page: Page, alice: User
) -> None:
    chat, *_ = chat_with_versions(alice, "Versions")
    _open(page, alice, chat)
    held = _hold(page, "**/select")

    page.get_by_role("button", name="Previous version").click()

    messages = page.locator("#messages")
    expect(messages.locator("article[data-cache-painted]", has_text="answer one")).to_be_visible()
    page.wait_for_timeout(50)
    held[0].abort("connectionrefused")
    expect(messages).to_contain_text("answer two")
    expect(messages).not_to_contain_text("answer one")
    expect(page.locator("#composer-error")).to_contain_text("Could not reach the server")
