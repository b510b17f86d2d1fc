"""Long chats and two tabs in a real browser: the page shows a window of the conversation and
loads the rest as the user scrolls, a version switch far up puts the right continuation in
place, a stale tab never loses what it sends, and a failed change keeps what was typed."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Locator, Page, Route, expect

from accounts.models import User
from tests.browser.helpers import live_log_in
from tests.chats.long_chats import LongChat, long_chat_create
from tests.fake_provider import FakeProvider, Script

WINDOW = 50  # settings.CHAT_WINDOW_MESSAGES on the live server (its default)

SHOWN_IDS = "messages => [...messages.querySelectorAll('article')].map(a => a.dataset.messageId)"


# Whether the loader of earlier messages is on screen (the user stops turning the wheel then).
TOP_LOADER_ON_SCREEN = """
() => {
  const loader = document.querySelector("#messages > .window-more");
  if (!loader) return false;
  const box = loader.getBoundingClientRect();
  return box.bottom > 0 && box.top < window.innerHeight;
}
"""


LAST_ON_SCREEN = """
() => {
  const last = document.querySelector("#messages > article:last-of-type").getBoundingClientRect();
  return last.bottom > 0 && last.top < window.innerHeight;
}
"""

# The first loader of earlier messages, the page's top one.
SCROLL_TO_TOP_LOADER = """
() => document.querySelector("#messages > .window-more").scrollIntoView()
"""


def _has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def _open(page: Page, long: LongChat) -> None:
    page.goto(f"/c/{long.chat.id}/")
    expect(_article(page, long.route[-1])).to_be_visible()


def _article(page: Page, message_id: uuid.UUID) -> Locator:
    return page.locator(f"#m-{message_id}")


def _articles(page: Page) -> Locator:
    return page.locator("#messages > article")


def _shown(page: Page) -> list[uuid.UUID]:
    return [uuid.UUID(found) for found in page.locator("#messages").evaluate(SHOWN_IDS)]


# Waits in the page for a count of messages. Playwright's `expect` would do too, but each of
# its failed polls on a page of a thousand messages draws the page's accessibility tree for its
# error message, which takes the browser seconds (its own work, not the app's).
def _wait_for_count(page: Page, count: int) -> None:
    page.wait_for_function(
        "count => document.querySelectorAll('#messages > article').length >= count", arg=count
    )


def _wait_for(page: Page, message_id: uuid.UUID) -> None:
    page.wait_for_selector(f"#m-{message_id}", state="attached")


def _top_loader(page: Page) -> Locator:
    return page.locator("#messages > .window-more").filter(has_text="earlier")


def _bottom_loader(page: Page) -> Locator:
    return page.locator("#messages > .window-more").filter(has_text="rest of the conversation")


def _text(position: int) -> str:
    return f"Message {position} says something about the trip."


def _log_in(page: Page, user: User) -> Page:
    live_log_in(page, user)
    return page


def test_a_10000_message_chat_opens_at_its_end_and_loads_older_messages_as_the_user_scrolls_up(
    page: Page, alice: User
) -> None:
    long = long_chat_create(user_id=alice.id, count=10_000, alternative_every=15)
    route = long.route
    _log_in(page, alice)

    _open(page, long)

    assert page.evaluate(LAST_ON_SCREEN), "the page opens at its last message"
    expect(_article(page, route[-1])).to_be_in_viewport()
    page.wait_for_load_state("networkidle")  # nothing more loads while the user reads
    expect(_articles(page)).to_have_count(WINDOW)
    assert _shown(page) == route[-WINDOW:]
    expect(_top_loader(page)).not_to_be_in_viewport()

    # The user scrolls up with the wheel until the loader of earlier messages is on screen.
    page.locator("#messages").hover()
    while not page.evaluate(TOP_LOADER_ON_SCREEN):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(50)  # a user's pace between wheel turns, not a wait for the load
    expect(_articles(page)).to_have_count(2 * WINDOW)
    page.wait_for_load_state("networkidle")  # whatever else that brought has come too

    assert _shown(page) == route[-2 * WINDOW :]
    # The message below the loader stays on screen: the new ones are above it, out of view.
    expect(_article(page, route[-WINDOW])).to_be_in_viewport()
    expect(_article(page, route[-2 * WINDOW])).not_to_be_in_viewport()

    # Further up, a window at a time, each in its place above the others.
    for windows in (3, 4):
        _top_loader(page).evaluate("loader => loader.scrollIntoView()")
        expect(_articles(page)).to_have_count(windows * WINDOW)
        page.wait_for_load_state("networkidle")

        assert _shown(page) == route[-windows * WINDOW :]
        expect(_article(page, route[-(windows - 1) * WINDOW])).to_be_in_viewport()
    expect(_bottom_loader(page)).to_have_count(0)


# Every window the user scrolls through stays in the page: scrolling all 10,000 messages in
# took 212 s (each window costs more as the page grows), so the version switch near the top is
# on a chat of 1,000.
def test_a_version_switch_near_the_top_of_a_1000_message_chat_shows_the_right_continuation(
    page: Page, alice: User
) -> None:
    long = long_chat_create(user_id=alice.id, count=1_000, alternative_every=15)
    route = long.route
    _log_in(page, alice)
    _open(page, long)

    # Up to the first messages, a window at a time.
    loaded = WINDOW
    while loaded < len(route):
        page.evaluate(SCROLL_TO_TOP_LOADER)
        loaded = min(loaded + WINDOW, len(route))
        _wait_for_count(page, loaded)
    page.wait_for_load_state("networkidle")

    expect(_top_loader(page)).to_have_count(0)
    expect(_bottom_loader(page)).to_have_count(0)
    assert _shown(page) == route

    # The version at position 15, then back.
    switched = _article(page, route[15])
    switched.scroll_into_view_if_needed()
    expect(switched.locator(".version-count")).to_have_text("1/2")
    switched.get_by_role("button", name="Next version").click()

    _wait_for(page, long.alternatives[15])
    other = _article(page, long.alternatives[15])
    expect(other.locator(".message-content")).to_have_text("Another take on 15.")
    expect(other.locator(".version-count")).to_have_text("2/2")
    page.wait_for_load_state("networkidle")
    assert _shown(page) == [*route[:15], long.alternatives[15]]

    other.get_by_role("button", name="Previous version").click()

    _wait_for(page, route[16])
    expect(_article(page, route[15]).locator(".version-count")).to_have_text("1/2")
    expect(_article(page, route[16])).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert _shown(page) == route[: 15 + WINDOW]
    expect(_articles(page).nth(16).locator(".message-content")).to_have_text(_text(16))
    expect(_articles(page).nth(17).locator(".message-content")).to_have_text(_text(17))
    expect(_top_loader(page)).to_have_count(0)

    # Scrolled down, the rest of the conversation comes from the bottom loader.
    _bottom_loader(page).evaluate("loader => loader.scrollIntoView()")
    _wait_for_count(page, 15 + 2 * WINDOW)
    page.wait_for_load_state("networkidle")
    assert _shown(page) == route[: 15 + 2 * WINDOW]


def _send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_a_stale_tab_sends_after_another_tab_switched_a_version_and_sees_its_turn(
    page: Page, alice: User, fake_model: str, fake_llm: FakeProvider
) -> None:
    long = long_chat_create(user_id=alice.id, count=40, alternative_every=15)
    route = long.route
    tab_a = _log_in(page, alice)
    tab_b = page.context.new_page()
    _open(tab_a, long)
    _open(tab_b, long)

    _article(tab_b, route[30]).get_by_role("button", name="Next version").click()
    expect(_article(tab_b, long.alternatives[30]).locator(".version-count")).to_have_text("2/2")

    fake_llm.enqueue(Script(text="The answer to tab A."))
    tab_a.get_by_label("Model").select_option(fake_model)
    _send(tab_a, "A question from tab A")

    question = tab_a.locator("article.message-user").last
    expect(question.locator(".message-content")).to_have_text("A question from tab A")
    answer = tab_a.locator("article.message-assistant").last
    expect(answer).to_have_class(_has_class("status-complete"))
    expect(answer.locator(".message-content")).to_have_text("The answer to tab A.")
    expect(tab_a.get_by_label("Message")).to_have_value("")
    for tab in (tab_a, tab_b):
        tab.reload()
        expect(tab.locator("article.message-user .message-content").last).to_have_text(
            "A question from tab A"
        )
        expect(tab.locator("article.message-assistant .message-content").last).to_have_text(
            "The answer to tab A."
        )


def test_a_stale_tab_sending_to_a_message_another_tab_deleted_says_so_and_keeps_the_text(
    page: Page, alice: User, fake_model: str, fake_llm: FakeProvider
) -> None:
    long = long_chat_create(user_id=alice.id, count=6)
    route = long.route
    tab_a = _log_in(page, alice)
    tab_b = page.context.new_page()
    _open(tab_a, long)
    _open(tab_b, long)
    # Tab A does not hear of the delete (the cache cannot sync: a socket down, a server away),
    # so it still shows the turn tab B deletes.
    page.context.route("**/api/cache/sync", lambda sync: sync.abort())

    last = _article(tab_b, route[-1])
    last.locator("summary", has_text="Delete").click()
    tab_b.once("dialog", lambda dialog: dialog.accept())
    last.get_by_role("button", name="The whole turn (all versions)").click()
    expect(_articles(tab_b)).to_have_count(5)

    tab_a.get_by_label("Model").select_option(fake_model)
    _send(tab_a, "Is anyone still there?")

    error = tab_a.locator("#composer-error [role=alert]")
    expect(error).to_contain_text("deleted in another tab")
    expect(tab_a.get_by_label("Message")).to_have_value("Is anyone still there?")
    assert "<html" not in tab_a.locator("#composer-error").inner_html().lower()
    assert _shown(tab_a) == route  # nothing else changed on the page
    assert fake_llm.chat_requests == []


def _fail_posts_with_500(route: Route) -> None:
    if route.request.method != "POST":  # the edit form itself loads
        route.continue_()
        return
    body = "<!DOCTYPE html><html><body><h1>Server Error (500)</h1></body></html>"
    route.fulfill(status=500, body=body, content_type="text/html")


def test_a_500_on_a_version_switch_or_an_edit_shows_a_readable_error_and_keeps_the_typed_text(
    page: Page, alice: User, fake_model: str
) -> None:
    long = long_chat_create(user_id=alice.id, count=20, alternative_every=15)
    route = long.route
    _log_in(page, alice)
    _open(page, long)
    page.get_by_label("Message").fill("A draft worth keeping")
    page.route(re.compile(r".*/m/[0-9a-f-]+/(select|edit)$"), _fail_posts_with_500)

    switched = _article(page, route[15])
    page.on(
        "response",
        lambda r: (
            print(
                "RESP",
                r.url[-60:],
                r.status,
                r.headers.get("vero-replace-after"),
                r.headers.get("hx-retarget"),
            )
            if "select" in r.url
            else None
        ),
    )
    switched.get_by_role("button", name="Next version").click()

    error = page.locator("#composer-error [role=alert]")
    expect(error).to_contain_text("The server had a problem (error 500)")
    expect(page.get_by_label("Message")).to_have_value("A draft worth keeping")
    expect(switched.locator(".version-count")).to_have_text("1/2")
    assert _shown(page) == route
    assert "Server Error" not in page.content()

    edited = _article(page, route[-2])
    edited.locator("summary", has_text="Edit").click()
    box = edited.get_by_label("Edited text")
    box.fill("A better question")
    edited.get_by_role("button", name="Save & answer").click()

    expect(error).to_contain_text("The server had a problem (error 500)")
    expect(box).to_have_value("A better question")
    expect(page.get_by_label("Message")).to_have_value("A draft worth keeping")
    assert _shown(page) == route
    assert "Server Error" not in page.content()


def test_edit_and_regenerate_with_load_their_form_and_model_list_when_opened(
    page: Page, alice: User, fake_model: str
) -> None:
    long = long_chat_create(user_id=alice.id, count=60)
    _log_in(page, alice)
    _open(page, long)
    answer = _article(page, long.route[-1])
    expect(page.locator("textarea")).to_have_count(1)  # the composer's only
    expect(page.locator("select")).to_have_count(1)  # the composer's model picker

    answer.locator("summary", has_text="Edit").click()

    box = answer.get_by_label("Edited text")
    expect(box).to_have_value(_text(59))
    expect(answer.get_by_role("button", name="Edit in place")).to_be_visible()

    answer.locator("summary", has_text="with…").click()

    models = answer.get_by_label("Answer again with")
    expect(models).to_be_visible()
    expect(models.locator("option")).to_have_count(1)
    expect(models.locator(f'option[value="{fake_model}"]')).to_have_text("Fake Model")
    expect(answer.get_by_role("button", name="Regenerate").last).to_be_visible()
