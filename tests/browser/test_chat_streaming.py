"""A guest chats with the fake provider: answers stream, survive a reload, stop, fail and retry."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from chats.models import Message
from tests.browser.helpers import page_on
from tests.fake_provider import FakeProvider, Script, split_tokens
from tests.live_server import live_server_start

ANSWER = (
    "Alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu."
)
# Word tokens that join back into the answer; each word appears once, so a duplicated or a
# missing piece of text changes the whole.
TOKENS = split_tokens(ANSWER)

# Records every distinct text of the last answer's live text node as deltas are appended, so
# the test sees each intermediate state without racing the stream by polling.
RECORD_ANSWER_STATES = """
() => {
  window.answerStates = [];
  new MutationObserver(() => {
    const bubbles = document.querySelectorAll("article.message-assistant [data-stream-text]");
    if (!bubbles.length) return;
    const text = bubbles[bubbles.length - 1].textContent;
    const states = window.answerStates;
    if (states[states.length - 1] !== text) states.push(text);
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}
"""


def _has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def _open_new_chat(page: Page, model_id: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="What can I help with?")).to_be_visible()
    page.get_by_label("Model").select_option(model_id)


def _send(page: Page, text: str) -> None:
    composer = page.get_by_label("Message")
    composer.fill(text)
    composer.press("Enter")


def _last_answer(page: Page) -> Locator:
    return page.locator("article.message-assistant").last


def _answer_row(bubble: Locator) -> Message:
    message_id = bubble.get_attribute("data-message-id")
    assert message_id is not None
    return Message.objects.get(id=message_id)


def test_a_guest_sends_with_enter_and_sees_the_answer_stream_token_by_token(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.05))
    _open_new_chat(page, fake_model)
    page.evaluate(RECORD_ANSWER_STATES)

    _send(page, "Spell the alphabet for me")

    expect(page.locator("article.message-user .message-content")).to_have_text(
        "Spell the alphabet for me"
    )
    answer = _last_answer(page)
    expect(answer).to_have_class(_has_class("status-complete"))
    expect(answer.locator(".message-content")).to_have_text(ANSWER)
    states: list[str] = page.evaluate("window.answerStates")
    partial_states = [state for state in states if state and state != ANSWER]
    assert len(partial_states) >= 5, states
    assert all(ANSWER.startswith(state) for state in states), states
    assert [len(state) for state in states] == sorted({len(state) for state in states}), states
    assert _answer_row(answer).text == ANSWER


def test_a_follow_up_streams_in_the_same_chat_with_the_conversation_as_context(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text="First answer."), Script(text="A title"))
    _open_new_chat(page, fake_model)
    _send(page, "First question")
    expect(_last_answer(page)).to_have_class(_has_class("status-complete"))
    fake_llm.wait_for_requests(2)  # the answer, then the title

    fake_llm.enqueue(Script(text=TOKENS[:6], delay=0.05))
    _send(page, "Second question")

    expect(page.locator("article.message-user .message-content")).to_have_text(
        ["First question", "Second question"]
    )
    answer = _last_answer(page)
    expect(answer).to_have_class(_has_class("status-complete"))
    expect(page.locator("article.message-assistant .message-content")).to_have_text(
        ["First answer.", "".join(TOKENS[:6])]
    )
    follow_up = fake_llm.chat_requests[-1].messages
    assert [(m["role"], m["content"]) for m in follow_up if m["role"] != "system"] == [
        ("user", "First question"),
        ("assistant", "First answer."),
        ("user", "Second question"),
    ]


def test_shift_enter_adds_a_line_instead_of_sending(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _open_new_chat(page, fake_model)
    composer = page.get_by_label("Message")

    composer.fill("First line")
    composer.press("Shift+Enter")
    composer.press_sequentially("second line")

    expect(composer).to_have_value("First line\nsecond line")
    expect(page.locator("article.message")).to_have_count(0)
    composer.press("Enter")
    expect(page.locator("article.message-user .message-content")).to_have_text(
        "First line\nsecond line"
    )
    expect(_last_answer(page)).to_have_class(_has_class("status-complete"))
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "First line\nsecond line"


def test_a_guest_reloads_mid_answer_and_sees_it_continue_with_the_full_text_once(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    # Slow enough for the server to checkpoint part of the answer before the stall, so the
    # reloaded page renders saved text and then follows the live deltas from its sequence.
    script = Script(text=TOKENS, delay=0.1, stall_after=14)
    fake_llm.enqueue(script)
    _open_new_chat(page, fake_model)
    _send(page, "Spell the alphabet for me")
    expect(_last_answer(page).locator("[data-stream-text]")).to_contain_text("Alpha bravo")
    assert script.wait_until_stalled(timeout=10)

    reloaded = page.reload()

    # The server rendered the checkpointed text; the rest came as deltas after its sequence.
    assert reloaded is not None
    saved_seq = re.search(r'data-stream-seq="(\d+)"', reloaded.text())
    assert saved_seq is not None and int(saved_seq.group(1)) > 0
    answer = _last_answer(page)
    expect(answer).to_have_class(_has_class("status-streaming"))
    expect(answer.locator("[data-stream-text]")).to_have_text("".join(TOKENS[:14]))
    script.release()
    expect(answer).to_have_class(_has_class("status-complete"))
    expect(answer.locator(".message-content")).to_have_text(ANSWER)
    assert _answer_row(answer).text == ANSWER


def test_a_guest_reloads_while_tokens_flow_and_sees_the_full_text_once(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.15))
    _open_new_chat(page, fake_model)
    _send(page, "Spell the alphabet for me")
    expect(_last_answer(page).locator("[data-stream-text]")).to_contain_text("echo")

    reloaded = page.reload()

    assert reloaded is not None and "status-streaming" in reloaded.text()

    answer = _last_answer(page)
    expect(answer.locator(".message-content")).to_contain_text("Alpha")
    expect(answer).to_have_class(_has_class("status-complete"))
    expect(answer.locator(".message-content")).to_have_text(ANSWER)
    assert _answer_row(answer).text == ANSWER


def test_a_guest_presses_stop_and_keeps_the_partial_answer(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    script = Script(text=TOKENS, delay=0.02, stall_after=5)
    fake_llm.enqueue(script)
    partial = "".join(TOKENS[:5])
    _open_new_chat(page, fake_model)
    _send(page, "Spell the alphabet for me")
    answer = _last_answer(page)
    expect(answer.locator("[data-stream-text]")).to_have_text(partial)
    assert script.wait_until_stalled(timeout=10)

    answer.get_by_role("button", name="Stop").click()

    expect(answer.locator(".status-note")).to_have_text("Stopped")
    expect(answer.locator(".message-content")).to_have_text(partial)
    expect(answer.get_by_role("button", name="Stop")).to_have_count(0)
    assert _answer_row(answer).status == Message.Status.STOPPED
    assert _answer_row(answer).text == partial
    page.reload()
    answer = _last_answer(page)
    expect(answer.locator(".status-note")).to_have_text("Stopped")
    expect(answer.locator(".message-content")).to_have_text(partial)


def test_a_dropped_stream_shows_a_clear_error_and_retry_streams_a_new_answer(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.02, fail_after=4))
    _open_new_chat(page, fake_model)
    _send(page, "Spell the alphabet for me")
    failed = _last_answer(page)

    expect(failed.get_by_role("alert")).to_have_text("The provider's answer broke off.")
    expect(failed.locator(".message-content")).to_have_text("".join(TOKENS[:4]))
    assert _answer_row(failed).status == Message.Status.ERROR

    retried_text = ["Second ", "time ", "lucky: ", "the ", "whole ", "answer."]
    fake_llm.enqueue(Script(text=retried_text, delay=0.05))
    failed.get_by_role("button", name="Retry").click()

    answer = _last_answer(page)
    expect(answer).to_have_class(_has_class("status-complete"))
    expect(answer.locator(".message-content")).to_have_text("".join(retried_text))
    expect(page.get_by_role("alert")).to_have_count(0)
    assert _answer_row(answer).status == Message.Status.COMPLETE
    assert _answer_row(answer).text == "".join(retried_text)


def test_a_provider_error_mid_stream_is_shown_and_retry_completes(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(
        Script(text=TOKENS, delay=0.02, error_after=3, error_message="The model is overloaded.")
    )
    _open_new_chat(page, fake_model)
    _send(page, "Spell the alphabet for me")
    failed = _last_answer(page)

    expect(failed.get_by_role("alert")).to_contain_text("The model is overloaded.")
    expect(failed.locator(".message-content")).to_have_text("".join(TOKENS[:3]))

    fake_llm.enqueue(Script(text=TOKENS, delay=0.01))
    failed.get_by_role("button", name="Retry").click()

    answer = _last_answer(page)
    expect(answer).to_have_class(_has_class("status-complete"))
    expect(answer.locator(".message-content")).to_have_text(ANSWER)


@pytest.fixture
def one_process_page(
    browser: Any, transactional_db: None, django_db_blocker: Any
) -> Iterator[Page]:
    """A page on a server of its own without Redis: one process, as `make run` serves."""
    with django_db_blocker.unblock():
        server = live_server_start(extra_env={"REDIS_URL": ""})
    try:
        yield from page_on(browser, server)
    finally:
        server.stop()


def _answer_stuck(page: Page, fake_model: str, **fields: Any) -> Message:
    """A chat whose answer is left `streaming` with nobody generating it, as a crash leaves it."""
    _open_new_chat(page, fake_model)
    _send(page, "Spell the alphabet for me")
    expect(_last_answer(page)).to_have_class(_has_class("status-complete"))
    answer = _answer_row(_last_answer(page))
    Message.objects.filter(id=answer.id).update(
        status=Message.Status.STREAMING, html="", heartbeat_at=timezone.now(), **fields
    )
    return answer


def test_a_stuck_answer_is_retried_with_growing_pauses_and_a_retry_button_never_in_a_loop(
    one_process_page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    page = one_process_page
    # Which process generates it is unknown (a row from before processes were recorded) and
    # its heartbeat is fresh: the server cannot settle it yet and says it is still streaming.
    answer = _answer_stuck(page, fake_model, generator=None)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.reload()
    # Not a wait for something: the window over which the tab's requests are counted.
    page.wait_for_timeout(5_000)

    streams = [url for url in requests if "/stream" in url]
    bodies = [url for url in requests if "part=body" in url]
    assert 2 <= len(streams) <= 4, streams  # after 0, 1 and 3 s (then 7 s): not 13 a second
    assert bodies == []
    stuck = _last_answer(page)
    expect(stuck.get_by_role("status").filter(has_text="Lost track of this answer")).to_be_visible()
    # Now the server can tell its process is gone: Retry reconnects at once and gets the end.
    Message.objects.filter(id=answer.id).update(generator=uuid.uuid4())
    stuck.get_by_role("button", name="Retry").click()
    settled = _last_answer(page)
    expect(settled.locator(".status-note")).to_have_text(
        "Interrupted: The server stopped before this answer was finished."
    )
    expect(settled.get_by_role("button", name="Retry")).to_be_visible()


def test_an_answer_left_by_a_process_that_is_gone_shows_as_interrupted_with_retry(
    one_process_page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    page = one_process_page
    # Generated by a process that no longer exists (this server has another id).
    answer = _answer_stuck(page, fake_model, generator=uuid.uuid4())

    page.reload()

    settled = _last_answer(page)
    expect(settled.locator(".status-note")).to_have_text(
        "Interrupted: The server stopped before this answer was finished."
    )
    assert _answer_row(settled).status == Message.Status.INTERRUPTED
    assert _answer_row(settled).text == answer.text  # what was saved stays
    fake_llm.enqueue(Script(text=TOKENS[:4], delay=0.02))
    settled.get_by_role("button", name="Retry").click()
    expect(_last_answer(page)).to_have_class(_has_class("status-complete"))
    assert Message.objects.get(id=answer.id).status == Message.Status.INTERRUPTED
