"""A new chat starts streaming like a follow-up, and the usage meter follows every send."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from models_registry.models import Tier
from ratelimit.models import Bucket, UserRateLimit
from tests.browser.test_chat_streaming import (
    ANSWER,
    RECORD_ANSWER_STATES,
    TOKENS,
    _last_answer,
    _open_new_chat,
)
from tests.fake_provider import FakeProvider, Script

CHAT_URL = re.compile(r"/c/[0-9a-f-]{36}/$")


def _send(page: Page, text: str) -> None:
    # Enter does nothing while an answer is still generating (the button is disabled).
    expect(page.locator("[data-send-button]")).to_be_enabled()
    composer = page.get_by_label("Message")
    composer.fill(text)
    composer.press("Enter")


def _complete(answer: Locator) -> None:
    expect(answer).to_have_class(re.compile(r"(^|\s)status-complete(\s|$)"))


def _send_and_finish(page: Page, text: str, *, sent: int) -> None:
    """Send the chat's `sent`-th message and wait until its own answer is complete."""
    _send(page, text)
    expect(page.locator("#composer-error")).to_be_empty()
    expect(page.locator("article.message-user")).to_have_count(sent)
    _complete(_last_answer(page))


def test_a_new_chat_from_the_home_page_streams_and_becomes_the_chats_page(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.05), Script(text="Alphabet"))
    _open_new_chat(page, fake_model)
    page.evaluate("window.notReloaded = true")
    page.evaluate(RECORD_ANSWER_STATES)

    _send(page, "Spell the alphabet")

    answer = _last_answer(page)
    expect(page).to_have_url(CHAT_URL)
    expect(page.locator("section.chat h1.chat-title-text")).to_have_text("Spell the alphabet")
    expect(page.locator("#chat-list [data-chat-link]")).to_have_text(
        [re.compile("Spell the alphabet|Alphabet")]  # the sidebar lists it, titled or not yet
    )
    _complete(answer)
    expect(answer.locator(".message-content")).to_have_text(ANSWER)
    states: list[str] = page.evaluate("window.answerStates")
    assert len([state for state in states if state and state != ANSWER]) >= 5, states  # streamed
    assert page.evaluate("window.notReloaded") is True  # no page load happened
    chat_url = page.url

    # The composer now sends to this chat: a follow-up lands under the first answer.
    fake_llm.wait_for_requests(2)  # the answer, then the title
    fake_llm.enqueue(Script(text="Eleven."))
    _send(page, "And then?")
    _complete(_last_answer(page))
    expect(page.locator("article.message-user .message-content")).to_have_text(
        ["Spell the alphabet", "And then?"]
    )
    assert page.url == chat_url

    page.reload()
    expect(page.locator("article.message-assistant .message-content")).to_have_text(
        [ANSWER, "Eleven."]
    )
    expect(page.locator("section.chat h1.chat-title-text")).to_have_text("Alphabet")


def test_the_meter_goes_down_with_every_send_without_a_reload(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _open_new_chat(page, fake_model)
    meter = page.locator("[data-composer-meter]")
    expect(meter).to_be_visible()  # near the composer, not only in the closed account menu
    expect(meter).to_contain_text("100 / 100 messages left")
    page.evaluate("window.notReloaded = true")

    fake_llm.enqueue(Script(text="First."), Script(text="A title"))
    _send_and_finish(page, "One", sent=1)
    expect(meter).to_contain_text("99 / 100 messages left")
    for sent, text in ((2, "Two"), (3, "Three")):
        fake_llm.enqueue(Script(text=f"Answer {text}."))
        _send_and_finish(page, text, sent=sent)
        expect(meter).to_contain_text(f"{100 - sent} / 100 messages left")

    menu_meter = page.locator("[data-ratelimit-meter=platform]")
    expect(menu_meter).to_contain_text("97 / 100 messages left")
    assert page.evaluate("window.notReloaded") is True


def _one_answer_under_a_small_guest_tier(
    page: Page, fake_model: str, fake_llm: FakeProvider, *, capacity: int
) -> Locator:
    """A guest's first answer under a tier of `capacity` messages every 12 min: the composer's
    meter."""
    Tier.objects.filter(slug=Tier.GUEST).update(
        bucket_capacity=capacity, refill_amount=capacity, refill_interval_seconds=720
    )
    _open_new_chat(page, fake_model)
    meter = page.locator("[data-composer-meter]")
    expect(meter).to_contain_text(f"{capacity} / {capacity} messages left")
    fake_llm.enqueue(Script(text="First."), Script(text="A title"))
    _send_and_finish(page, "One", sent=1)
    return meter


def test_the_composer_says_when_few_messages_are_left(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    meter = _one_answer_under_a_small_guest_tier(page, fake_model, fake_llm, capacity=7)
    expect(meter).to_contain_text("6 / 7 messages left")

    fake_llm.enqueue(Script(text="Second."))
    _send_and_finish(page, "Two", sent=2)
    expect(meter).to_have_text("5 messages left, next refill in 12 min")
    expect(meter).to_have_class(re.compile(r"composer-meter-low"))


def test_the_meter_goes_down_when_an_answer_is_regenerated_without_a_reload(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _open_new_chat(page, fake_model)
    fake_llm.enqueue(Script(text="First."), Script(text="A title"))
    _send_and_finish(page, "One", sent=1)
    meter = page.locator("[data-composer-meter]")
    expect(meter).to_contain_text("99 / 100 messages left")
    fake_llm.wait_for_requests(2)  # the answer, then the title: the next script is ours
    page.evaluate("window.notReloaded = true")

    fake_llm.enqueue(Script(text="Second."))
    _last_answer(page).get_by_role("button", name="Regenerate", exact=True).click()

    expect(_last_answer(page).locator(".message-content")).to_have_text("Second.")
    expect(meter).to_contain_text("98 / 100 messages left")
    expect(page.locator("[data-ratelimit-meter=platform]")).to_contain_text(
        "98 / 100 messages left"
    )
    assert page.evaluate("window.notReloaded") is True


def test_a_refused_send_shows_the_empty_meter_and_when_the_next_message_comes(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    meter = _one_answer_under_a_small_guest_tier(page, fake_model, fake_llm, capacity=3)
    expect(meter).to_have_text("2 messages left, next refill in 12 min")
    # Another tab spends the rest: this page still shows two left.
    UserRateLimit.objects.filter(bucket=Bucket.PLATFORM).update(tokens=0)

    _send(page, "Two")

    expect(page.locator("#composer-error")).to_contain_text("Limit reached")
    expect(meter).to_contain_text(re.compile(r"Limit reached, next message in \d+ min"))
    expect(meter.locator("meter")).to_have_attribute("value", "0")
    expect(page.locator("[data-ratelimit-meter=platform]")).to_contain_text("Limit reached")
    expect(page.locator("article.message-user")).to_have_count(1)


def test_send_stays_disabled_from_a_sent_turns_response_until_its_answer_is_on_the_page(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.05), Script(text="Alphabet"))
    _open_new_chat(page, fake_model)
    # htmx swaps the turn at once but runs its load handlers after the settle delay: made long
    # here, the window in which an Enter used to send a second turn (a 409) stays open.
    page.evaluate("window.htmx.config.defaultSettleDelay = 1500")
    composer = page.get_by_label("Message")
    composer.fill("Spell the alphabet")

    with page.expect_response(lambda response: response.url.endswith("/c/send")):
        composer.press("Enter")
    page.wait_for_timeout(100)  # inside the settle delay: not a wait for something

    expect(page.locator("[data-send-button]")).to_be_disabled()
    composer.fill("A second question too soon")
    composer.press("Enter")
    _complete(_last_answer(page))
    expect(page.locator("article.message-user")).to_have_count(1)
    expect(composer).to_have_value("A second question too soon")
