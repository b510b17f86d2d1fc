"""Tabs and devices stay current through the cache: one tab leads (the socket, the syncs), and
what changes in one tab or device shows in the others within 2 s; a stale tab shows another
tab's branch before it can send into it. Two pages of one browser context are two tabs; a
second context, logged in on its own, is another device."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from accounts.models import User
from chats.models import Chat, Message
from chats.services import chat_rename
from chats.version_services import message_edit_in_place
from tests.browser.cache_support import cache_chat_wait, cache_eval, leader_wait
from tests.browser.helpers import live_password_set
from tests.fake_provider import FakeProvider, Script
from tests.helpers import PASSWORD
from tests.live_server import LiveServer

WITHIN = 2_000  # ms: the bound for a change to show in another tab or device


@pytest.fixture
def alice_live(alice: User) -> User:
    """Alice, able to log in through the live server's form (her password is set once: a
    change of password would log out the sessions opened before it)."""
    live_password_set(alice)
    return alice


def _log_in(page: Page, user: User) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email or "")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/")


@pytest.fixture
def tabs(page: Page, alice_live: User) -> tuple[Page, Page]:
    """Two tabs of alice's browser; the first one opened leads."""
    _log_in(page, alice_live)
    leader_wait(page)
    other = page.context.new_page()
    other.goto("/")
    other.wait_for_function("window.veroCache !== undefined")
    return page, other


@pytest.fixture
def device(browser: Browser, vero_server: LiveServer, alice_live: User) -> Iterator[Page]:
    """Alice on another device: a browser context of its own, its own session."""
    context: BrowserContext = browser.new_context(base_url=vero_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    _log_in(page, alice_live)
    leader_wait(page)
    yield page
    context.close()


def _has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def _send(page: Page, text: str) -> None:
    composer = page.get_by_label("Message")
    composer.fill(text)
    composer.press("Enter")


def _sidebar_link(page: Page, title: str) -> Locator:
    return page.locator("#chat-list [data-chat-link]", has_text=title)


def _answers(page: Page) -> Locator:
    return page.locator("article.message-assistant .message-content")


def _new_chat(page: Page, model: str, question: str, answer: str) -> Chat:
    page.goto("/")
    page.get_by_label("Model").select_option(model)
    _send(page, question)
    expect(_answers(page).last).to_have_text(answer)
    return Chat.objects.get(messages__parts__0__text=question)


def _open(page: Page, chat: Chat) -> None:
    page.goto(f"/c/{chat.id}/")
    expect(page.locator("section.chat")).to_have_attribute("data-chat-id", str(chat.id))


def test_a_chat_created_in_one_tab_appears_in_the_other_tab_and_device_within_2_s(
    tabs: tuple[Page, Page], device: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    first, second = tabs
    fake_llm.enqueue(Script(text="Bring sandwiches."), Script(text="Picnic plans"))

    _new_chat(first, fake_model, "What should I bring to a picnic?", "Bring sandwiches.")
    expect(first.locator("#chat-title h1")).to_have_text("Picnic plans")

    expect(_sidebar_link(second, "Picnic plans")).to_be_visible(timeout=WITHIN)
    expect(_sidebar_link(device, "Picnic plans")).to_be_visible(timeout=WITHIN)


def test_a_rename_in_one_tab_shows_in_the_other_tabs_header_and_sidebar_and_on_the_device(
    tabs: tuple[Page, Page], device: Page, alice: User
) -> None:
    first, second = tabs
    chat = Chat.objects.create(user=alice, title="Old name")
    for page in (first, second, device):
        _open(page, chat)
    second.get_by_label("Message").fill("a draft in progress")

    first.get_by_label("Chat actions").click()
    first.get_by_label("Title").fill("New name")
    first.get_by_role("button", name="Rename").click()
    expect(first.locator("#chat-title h1")).to_have_text("New name")

    for page in (second, device):
        expect(page.locator("#chat-title h1")).to_have_text("New name", timeout=WITHIN)
        expect(_sidebar_link(page, "New name")).to_be_visible(timeout=WITHIN)
        expect(page).to_have_title("New name · Vero", timeout=WITHIN)
    expect(second.get_by_label("Message")).to_have_value("a draft in progress")


def test_an_answer_in_one_tab_shows_in_the_tab_and_device_that_show_the_chat_within_2_s(
    tabs: tuple[Page, Page], device: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    first, second = tabs
    fake_llm.enqueue(Script(text="First answer."), Script(text="Numbers"))
    chat = _new_chat(first, fake_model, "First question", "First answer.")
    fake_llm.wait_for_requests(2)
    _open(second, chat)
    _open(device, chat)

    fake_llm.enqueue(Script(text="Second answer."))
    _send(first, "Second question")
    expect(_answers(first).last).to_have_text("Second answer.")
    expect(_answers(first).last.locator("xpath=ancestor::article")).to_have_class(
        _has_class("status-complete")
    )

    for page in (second, device):
        expect(_answers(page)).to_have_text(["First answer.", "Second answer."], timeout=WITHIN)


def test_a_branch_made_in_one_tab_shows_in_the_stale_tab_which_then_sends_under_it(
    tabs: tuple[Page, Page], fake_model: str, fake_llm: FakeProvider
) -> None:
    """The stale-tab send of "Trees you can trust": the second tab shows the chat as it was;
    the first regenerates the answer. The second tab now shows the new version (keeping its
    draft), so what it sends goes under the answer it shows, never unseen under the old one."""
    first, second = tabs
    fake_llm.enqueue(Script(text="Old answer."), Script(text="Branches"))
    chat = _new_chat(first, fake_model, "Tell me something", "Old answer.")
    fake_llm.wait_for_requests(2)
    _open(second, chat)
    second.get_by_label("Message").fill("Follow-up from the second tab")

    fake_llm.enqueue(Script(text="New answer."))
    first.get_by_role("button", name="Regenerate", exact=True).click()
    expect(_answers(first)).to_have_text(["New answer."])
    expect(first.locator(".version-count")).to_have_text("2/2")

    expect(_answers(second)).to_have_text(["New answer."], timeout=WITHIN)
    expect(second.locator(".version-count")).to_have_text("2/2")
    expect(second.get_by_label("Message")).to_have_value("Follow-up from the second tab")

    fake_llm.enqueue(Script(text="Answer on the new branch."))
    second.get_by_label("Message").press("Enter")
    expect(_answers(second).last).to_have_text("Answer on the new branch.")
    follow_up = Message.objects.get(chat=chat, parts__0__text="Follow-up from the second tab")
    new_answer = Message.objects.get(chat=chat, parts__0__text="New answer.")
    assert follow_up.parent_id == new_answer.id


def test_a_change_elsewhere_waits_while_this_tab_streams_an_answer_then_shows(
    tabs: tuple[Page, Page], fake_model: str, fake_llm: FakeProvider
) -> None:
    """The chat a tab is generating in is not reloaded under its stream: the change shows once
    the answer ends."""
    first, _ = tabs
    script = Script(text=["Partial ", "answer ", "then ", "the ", "rest."], stall_after=2)
    fake_llm.enqueue(script, Script(text="Streams"))
    first.goto("/")
    first.get_by_label("Model").select_option(fake_model)
    _send(first, "Original question")
    streaming = first.locator("article.message-assistant [data-stream-text]")
    expect(streaming).to_have_text("Partial answer ")
    assert script.wait_until_stalled(timeout=10)
    first.evaluate("document.querySelector('article.message-assistant').dataset.mark = 'live'")
    question = Message.objects.get(parts__0__text="Original question")

    message_edit_in_place(message=question, text="Edited elsewhere")  # another device
    cache_chat_wait(first, question.chat_id, lambda c: "Edited elsewhere" in str(c["messages"]))
    first.wait_for_timeout(500)  # what a refresh would need, had it not waited

    assert first.evaluate("document.querySelector('article.message-assistant').dataset.mark")
    expect(streaming).to_have_text("Partial answer ")
    expect(first.locator("article.message-user .message-content")).to_have_text("Original question")
    script.release()
    expect(_answers(first)).to_have_text(["Partial answer then the rest."])
    expect(first.locator("article.message-user .message-content")).to_have_text(
        "Edited elsewhere", timeout=WITHIN
    )


# Records every change the cache announces in this tab, and every repaint of its sidebar from
# the cache (which marks the list with the group it ended in; the server's refresh does not).
RECORD_CHANGES = """() => {
  window.changes = [];
  window.veroCache.on("changed", (change) => window.changes.push(change));
  window.cachePaints = 0;
  new MutationObserver((records) => { window.cachePaints += records.length; }).observe(
    document.getElementById("chat-list"),
    { attributes: true, attributeFilter: ["data-cache-last-group"] },
  );
}"""


def test_a_tab_ignores_the_echo_of_its_own_change_but_others_hear_it_with_its_origin(
    tabs: tuple[Page, Page], alice: User
) -> None:
    first, second = tabs
    chat = Chat.objects.create(user=alice, title="Echo")
    for page in (first, second):
        _open(page, chat)
    # The catch-up syncs of the page loads are over before recording starts.
    cache_chat_wait(second, chat.id)
    second.wait_for_timeout(500)
    for page in (first, second):
        page.evaluate(RECORD_CHANGES)
    first_tab = first.evaluate("window.veroCache.tabId")
    assert first_tab != second.evaluate("window.veroCache.tabId")

    first.get_by_label("Chat actions").click()
    first.get_by_label("Title").fill("Echo renamed")
    first.get_by_role("button", name="Rename").click()
    expect(second.locator("#chat-title h1")).to_have_text("Echo renamed", timeout=WITHIN)

    heard = second.evaluate("window.changes")
    assert {"chats": [str(chat.id)], "origin": first_tab, "cause": "event"} in [
        {key: change[key] for key in ("chats", "origin", "cause")} for change in heard
    ]
    assert second.evaluate("window.cachePaints") > 0
    first.wait_for_function("window.changes.length > 0")
    assert all(change["origin"] == first_tab for change in first.evaluate("window.changes"))
    assert first.evaluate("window.cachePaints") == 0  # its own echo: no repaint


def test_closing_the_leading_tab_makes_the_other_lead_and_it_keeps_the_cache_current(
    tabs: tuple[Page, Page], alice: User
) -> None:
    first, second = tabs
    chat = Chat.objects.create(user=alice, title="Before the handover")
    cache_chat_wait(second, chat.id)
    assert first.evaluate("window.veroCache.leader") is True
    assert second.evaluate("window.veroCache.leader") is False

    first.close()

    leader_wait(second, timeout=10)
    chat_rename(chat=chat, title="After the handover")  # another device's change
    cache_chat_wait(second, chat.id, lambda c: c["title"] == "After the handover", timeout=5)
    expect(_sidebar_link(second, "After the handover")).to_be_visible(timeout=WITHIN)


def test_without_web_locks_a_lease_elects_one_leader_and_a_follower_takes_over_within_10_s(
    browser: Browser, vero_server: LiveServer, alice_live: User
) -> None:
    context: BrowserContext = browser.new_context(base_url=vero_server.url)
    context.set_default_timeout(15_000)
    context.add_init_script("Object.defineProperty(navigator, 'locks', { value: undefined });")
    try:
        first = context.new_page()
        _log_in(first, alice_live)
        leader_wait(first)
        second = context.new_page()
        second.goto("/")
        second.wait_for_timeout(3_000)  # several of the lease's checks
        assert second.evaluate("navigator.locks") is None
        assert first.evaluate("window.veroCache.leader") is True
        assert second.evaluate("window.veroCache.leader") is False

        first.close()

        leader_wait(second, timeout=10)
    finally:
        context.close()


def test_a_change_no_event_announced_arrives_when_the_servers_listener_reconnects(
    tabs: tuple[Page, Page], alice: User
) -> None:
    """The server's listener lost its connection: events may have been missed, so it sends
    `resync` and the leading tab syncs. The change here publishes no event at all, so only
    that sync can bring it."""
    first, _ = tabs
    chat = Chat.objects.create(user=alice, title="Before the outage")
    first.reload()
    cache_chat_wait(first, chat.id)
    first.wait_for_timeout(1_000)  # the page load's syncs are over
    Chat.objects.filter(id=chat.id).update(title="Changed quietly")  # no service: no event
    first.wait_for_timeout(1_000)
    assert cache_eval(first, f"cache.chatGet('{chat.id}')")["title"] == "Before the outage"

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name LIKE 'vero-listener:%%' AND datname = current_database()"
        )
        assert cursor.fetchone()[0] >= 1

    cache_chat_wait(first, chat.id, lambda c: c["title"] == "Changed quietly", timeout=10)
    expect(_sidebar_link(first, "Changed quietly")).to_be_visible(timeout=WITHIN)


def test_a_chat_deleted_elsewhere_leaves_the_cache_and_the_sidebar(
    tabs: tuple[Page, Page], alice: User
) -> None:
    _, second = tabs
    kept = Chat.objects.create(user=alice, title="Kept chat")
    doomed = Chat.objects.create(user=alice, title="Doomed chat")
    second.reload()
    expect(_sidebar_link(second, "Doomed chat")).to_be_visible()
    cache_chat_wait(second, doomed.id)

    from chats.services import chat_delete

    chat_delete(chat=doomed)

    expect(_sidebar_link(second, "Doomed chat")).to_have_count(0, timeout=WITHIN)
    expect(_sidebar_link(second, "Kept chat")).to_be_visible()
    assert cache_eval(second, f"cache.chatGet('{doomed.id}')") is None
    assert [entry["id"] for entry in cache_eval(second, "cache.chatsList()")] == [str(kept.id)]


# The merge rules of sync.js, run in the browser on made-up pages.
MERGE_CASES = """async () => {
  const { chatMerge } = await import("/static/js/cache/sync.js");
  const at = (seconds) => `2026-01-01T00:00:0${seconds}+00:00`;
  const message = (id, seconds, html) => ({ id, updated_at: at(seconds), html });
  const chat = (fields) => ({
    id: "c", title: "t", updated_at: at("0.000001"), whole: true, more_messages: false,
    deleted_messages: [], messages: [], ...fields,
  });
  const base = chatMerge(null, chat({ messages: [message("a", 0, "A"), message("b", 0, "B")] }));
  const delta = chatMerge(base, chat({
    whole: false, title: "t2", updated_at: at(1), deleted_messages: ["b"],
    messages: [message("c", 1, "C"), message("a", 1, "A2")],
  }), false);
  const older = chatMerge(delta, chat({ whole: false, title: "stale", updated_at: at("0.5") }));
  const part1 = chatMerge(delta, chat({
    more_messages: true, updated_at: at(2), messages: [message("x", 2, "X")],
  }), false);
  const part2 = chatMerge(part1, chat({
    whole: false, updated_at: at(2), messages: [message("y", 2, "Y")],
  }), true);
  const orphan = chatMerge(null, chat({ whole: false, messages: [message("z", 0, "Z")] }), false);
  const keys = (c) => Object.keys(c.messages).sort().join("");
  return {
    base: keys(base),
    transport: ["whole", "more_messages", "deleted_messages"].filter((k) => k in base),
    delta: keys(delta), deltaTitle: delta.title, deltaA: delta.messages.a.html,
    olderTitle: older.title, part1: keys(part1), part2: keys(part2),
    orphanPartial: orphan.partial === true,
  };
}"""


def test_sync_merges_deltas_drops_deleted_messages_keeps_the_newer_and_joins_split_chats(
    page: Page,
) -> None:
    page.goto("/")

    assert page.evaluate(MERGE_CASES) == {
        "base": "ab",
        "transport": [],
        "delta": "ac",  # c added, a replaced by its newer version, b deleted
        "deltaTitle": "t2",
        "deltaA": "A2",
        "olderTitle": "t2",  # an older copy of the chat does not undo a newer one
        "part1": "x",  # a whole chat replaces what was cached ...
        "part2": "xy",  # ... and its continuation on the next page adds to it
        "orphanPartial": True,  # a delta without its chat cached is marked partial
    }


def test_reconnects_back_off_from_1_s_doubling_to_30_s_with_jitter(page: Page) -> None:
    page.goto("/")

    delays: list[list[float]] = page.evaluate(
        """async () => {
          const { reconnectDelay } = await import("/static/js/cache/socket.js");
          const samples = (n) => Array.from({ length: 50 }, () => reconnectDelay(n));
          return [0, 1, 2, 3, 4, 5, 6, 10].map(samples);
        }"""
    )

    ceilings = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    for samples, ceiling in zip(delays, ceilings, strict=True):
        assert all(ceiling / 2 <= delay <= ceiling for delay in samples), (ceiling, samples)
        assert len(set(samples)) > 1  # jittered: tabs do not reconnect in step
