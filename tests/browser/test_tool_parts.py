"""A guest watches an answer call a tool: the call runs under the answer, its result follows,
and the page that folded the live events ends with the very elements the server renders from
the final parts, also after a reload in the middle of the call.

The answer is played by the live server from a script of the contract's events
(tests/browser/tool_parts_support.py), so what is tested is the page, not a provider.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from chats.models import Message
from tests.browser.helpers import page_on
from tests.browser.tool_parts_support import GATES_ENV, SCRIPTED, gate_path
from tests.live_server import LiveServer, live_server_start

# One answer's blocks, written so that two renderings compare equal when they hold the same
# elements, attributes and text (whitespace between elements and `open` do not count).
CANONICAL = """
(body) => {
  const canonical = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return node.data.trim() ? JSON.stringify(node.data) : "";
    if (node.nodeType !== Node.ELEMENT_NODE) return "";
    const attributes = [...node.attributes].filter((attribute) => attribute.name !== "open")
      .map((attribute) => `${attribute.name}=${JSON.stringify(attribute.value)}`).sort();
    const children = [...node.childNodes].map(canonical).join("");
    return `<${node.localName} ${attributes.join(" ")}>${children}</${node.localName}>`;
  };
  const copy = body.cloneNode(true);
  copy.normalize();
  return canonical(copy);
}
"""

# The blocks as the live fold left them, at the moment the answer's stream ended (before the
# page fetches the server's rendering of the finished answer).
RECORD_FOLDED = f"""
() => {{
  const canonical = {CANONICAL};
  window.folded = null;
  document.addEventListener("vero:finished", (event) => {{
    window.folded = canonical(event.target.querySelector(".message-body"));
  }}, true);
}}
"""


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def scripted_server(
    django_db_setup: None, django_db_blocker: Any, gates: Path
) -> Iterator[LiveServer]:
    """A live server whose answers are the script's, not a provider's."""
    with django_db_blocker.unblock():
        server = live_server_start(
            extra_env={GATES_ENV: str(gates)},
            patches={"chats.worker:generation_start": SCRIPTED},
        )
    yield server
    server.stop()


@pytest.fixture
def scripted_page(
    browser: Any, scripted_server: LiveServer, transactional_db: None
) -> Iterator[Page]:
    yield from page_on(browser, scripted_server)


def _ask(page: Page, model_id: str) -> Locator:
    page.get_by_label("Model").select_option(model_id)
    composer = page.get_by_label("Message")
    composer.fill("What is the weather in Paris?")
    composer.press("Enter")
    return page.locator("article.message-assistant").last


def _message_id(answer: Locator) -> str:
    message_id = answer.get_attribute("data-message-id")
    assert message_id is not None
    return message_id


def _checkpoint_saved(message_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not Message.objects.filter(id=message_id, stream_seq__gt=0).exists():
        assert time.monotonic() < deadline, "the script saved no checkpoint"
        time.sleep(0.05)


def _running_call_shown(answer: Locator) -> Locator:
    call = answer.locator("[data-tool-call]")
    expect(call).to_have_count(1)
    expect(call.locator("[data-tool-name]")).to_have_text("get_weather")
    status = call.locator("[data-tool-status]")
    expect(status).to_have_text("Running…")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status.locator(".spinner")).to_be_attached()
    return call


def _canonical(answer: Locator) -> str:
    body = answer.locator(".message-body")
    result: str = body.evaluate(CANONICAL)
    return result


def _finished_like_the_server_renders_it(page: Page, answer_id: str) -> None:
    """The folded blocks at the stream's end are those the server renders from the final parts
    (the page swaps them in right after), and those of a fresh page."""
    answer = page.locator(f"#m-{answer_id}")
    expect(answer).to_have_class(re.compile(r"\bstatus-complete\b"))
    folded = page.evaluate("window.folded")
    assert folded, "the page recorded no folded answer"
    assert _canonical(answer) == folded
    page.reload()
    assert _canonical(page.locator(f"#m-{answer_id}")) == folded


def test_a_tool_call_runs_under_the_answer_then_shows_its_result_and_the_answer_goes_on(
    scripted_page: Page, fake_model: str, gates: Path
) -> None:
    page = scripted_page
    page.goto("/")
    page.evaluate(RECORD_FOLDED)
    answer = _ask(page, fake_model)

    call = _running_call_shown(answer)
    expect(answer.locator("[data-reasoning]")).to_contain_text("I should call get_weather.")
    expect(answer.locator("[data-stream-text]").first).to_have_text("Let me look that up.")
    # Collapsed, and opened from the keyboard: the arguments as the model wrote them, laid out.
    arguments = call.locator("[data-tool-arguments]")
    expect(arguments).not_to_be_visible()
    call.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(arguments).to_have_text('{\n  "city": "Paris",\n  "days": 1\n}')

    gate_path(gates, _message_id(answer)).touch()

    expect(call.locator("[data-tool-status]")).to_have_text("Done")
    result = call.locator("[data-tool-result] pre")
    expect(result).to_contain_text('"sky": "sunny"')
    expect(result).to_contain_text('"temperature": 21,')
    # The second step's text comes after the call, in a block of its own.
    expect(answer.locator(".message-content").last).to_have_text("It is 21 °C and sunny in Paris.")
    blocks = answer.locator(".message-body > *").evaluate_all(
        "(blocks) => blocks.map("
        "  (block) => block.matches('[data-tool-call]') ? 'tool' : block.className)"
    )
    assert blocks == [
        "reasoning",
        "message-content markdown",
        "tool",
        "reasoning",
        "message-content markdown",
    ]
    expect(answer.locator("[data-reasoning]").last).to_be_hidden()
    expect(answer.locator("strong")).to_have_text("sunny")  # the Markdown, once finished
    _finished_like_the_server_renders_it(page, _message_id(answer))


def test_after_a_reload_during_the_call_the_page_ends_exactly_as_the_server_renders_it(
    scripted_page: Page, fake_model: str, gates: Path
) -> None:
    page = scripted_page
    page.goto("/")
    answer = _ask(page, fake_model)
    _running_call_shown(answer)
    answer_id = _message_id(answer)
    _checkpoint_saved(answer_id)

    reloaded = page.reload()

    assert reloaded is not None and "status-streaming" in reloaded.text()
    page.evaluate(RECORD_FOLDED)
    answer = page.locator(f"#m-{answer_id}")
    _running_call_shown(answer)  # from the saved parts
    gate_path(gates, answer_id).touch()
    expect(answer.locator("[data-tool-result] pre")).to_contain_text('"sky": "sunny"')
    expect(answer.locator(".message-content").last).to_have_text("It is 21 °C and sunny in Paris.")
    # Nothing twice: one call, the step's reasoning and the second step's (empty) one, the
    # first text once.
    expect(answer.locator("[data-tool-call]")).to_have_count(1)
    expect(answer.locator("[data-reasoning]")).to_have_count(2)
    expect(answer.locator(".message-content").first).to_have_text("Let me look that up.")
    _finished_like_the_server_renders_it(page, answer_id)
