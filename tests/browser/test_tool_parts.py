"""A guest watches an answer call a tool: the call runs under the answer, its result follows,
and the page that folded the live events ends with the very elements the server renders from
the final parts, also after a reload in the middle of the call.

First with an answer the live server plays from a script of the contract's events
(tests/browser/tool_parts_support.py: the page alone is tested, every kind of event at a known
moment), then through the real loop: the fake provider's model calls run_code, which runs
slow code in the sandbox.
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
from models_registry.models import Model, Provider
from models_registry.services import provider_key_set
from tests.browser.helpers import page_on
from tests.browser.tool_parts_support import GATES_ENV, SCRIPTED, gate_path
from tests.fake_provider import FakeProvider, Script, ToolCall
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


# ---------------------------------------------------------------------------------------------
# The real loop: the fake provider's model calls run_code, which runs slow code in the sandbox

SLOW_CODE = "await new Promise((resolve) => setTimeout(resolve, 3500));\n6 * 7"


@pytest.fixture
def code_model(fake_model: str) -> str:
    """The fake model, recorded as calling tools (with a key, which LiteLLM insists on)."""
    provider_key_set(provider=Provider.objects.get(slug="fake-provider"), api_key="sk-test")
    Model.objects.filter(id=fake_model).update(supports_tools=True)
    return fake_model


def _code_answer_queued(fake_llm: FakeProvider) -> None:
    fake_llm.enqueue(
        Script(
            reasoning=["Multiplying ", "is best done ", "by code."],
            text=["I will ", "compute it."],
            tool_calls=[ToolCall(name="run_code", arguments={"code": SLOW_CODE}, id="call_js")],
            delay=0.05,
        ),
        Script(text=["Six times seven ", "is **42**."], delay=0.05),
        Script(text="Multiplication"),  # the chat's title
    )


def _running_call_saved(message_id: str, timeout: float = 10.0) -> None:
    """Until a checkpoint holds the call as running (a page loaded now renders it so)."""
    deadline = time.monotonic() + timeout
    while True:
        parts = Message.objects.get(id=message_id).parts
        if any(p.get("type") == "tool-call" and p.get("status") == "running" for p in parts):
            return
        assert time.monotonic() < deadline, f"no checkpoint with the running call: {parts}"
        time.sleep(0.05)


def test_run_code_runs_under_the_answer_and_its_result_follows(
    page: Page, code_model: str, fake_llm: FakeProvider
) -> None:
    _code_answer_queued(fake_llm)
    page.goto("/")
    page.evaluate(RECORD_FOLDED)
    answer = _ask(page, code_model)

    call = answer.locator("[data-tool-call]")
    expect(call.locator("[data-tool-name]")).to_have_text("run_code")
    expect(call.locator("[data-tool-status]")).to_have_text("Running…")
    expect(call.locator("[data-tool-status] .spinner")).to_be_attached()

    expect(call.locator("[data-tool-status]")).to_have_text("Done", timeout=20_000)
    expect(call.locator("[data-tool-result] pre")).to_contain_text('"result": 42')
    expect(answer.locator(".message-content").last).to_have_text("Six times seven is 42.")
    _finished_like_the_server_renders_it(page, _message_id(answer))


def test_a_reload_while_run_code_runs_ends_exactly_as_the_server_renders_it(
    page: Page, code_model: str, fake_llm: FakeProvider
) -> None:
    _code_answer_queued(fake_llm)
    page.goto("/")
    answer = _ask(page, code_model)
    expect(answer.locator("[data-tool-status]")).to_have_text("Running…")
    answer_id = _message_id(answer)
    _running_call_saved(answer_id)

    page.reload()

    page.evaluate(RECORD_FOLDED)
    answer = page.locator(f"#m-{answer_id}")
    status = answer.locator("[data-tool-status]")
    expect(status).to_have_text("Running…")  # from the checkpoint, then live
    expect(status).to_have_text("Done", timeout=20_000)
    expect(answer.locator(".message-content").last).to_have_text("Six times seven is 42.")
    expect(answer.locator("[data-tool-call]")).to_have_count(1)
    _finished_like_the_server_renders_it(page, answer_id)


def test_stop_while_run_code_runs_ends_the_call_as_failed_and_keeps_it(
    page: Page, code_model: str, fake_llm: FakeProvider
) -> None:
    _code_answer_queued(fake_llm)
    page.goto("/")
    page.evaluate(RECORD_FOLDED)
    answer = _ask(page, code_model)
    status = answer.locator("[data-tool-status]")
    expect(status).to_have_text("Running…")

    answer.get_by_role("button", name="Stop").click()

    expect(answer).to_have_class(re.compile(r"\bstatus-stopped\b"))
    expect(status).to_have_text("Failed")
    expect(answer.locator("[data-tool-result]")).to_have_class(re.compile(r"tool-result-error"))
    expect(answer.locator("[data-tool-result] pre")).to_contain_text('"type": "stopped"')
    expect(answer.locator(".message-content").first).to_have_text("I will compute it.")
    folded = page.evaluate("window.folded")
    answer_id = _message_id(answer)
    assert _canonical(answer) == folded
    page.reload()
    assert _canonical(page.locator(f"#m-{answer_id}")) == folded
