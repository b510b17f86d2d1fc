"""The archive in a browser: an entry written on the archive page, pinned to a chat (staged on
a new chat, then pinned from the chat's header), reaches the model's system prompt; an entry
the model writes with `write_archive` appears on the archive page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from archive.models import ChatPin
from models_registry.models import Model, Provider
from models_registry.services import provider_key_set
from tests.archive.helpers import system_message
from tests.browser.test_chat_streaming import _last_answer, _open_new_chat
from tests.fake_provider import FakeProvider, Script, ToolCall

COMPLETE = re.compile(r"(^|\s)status-complete(\s|$)")


def _write_entry(page: Page, title: str, body: str) -> None:
    page.goto("/archive/")
    expect(page.get_by_text("Your archive is empty.")).to_be_visible()
    page.get_by_role("link", name="New entry").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Text").fill(body)
    page.get_by_label("Tags").fill("pets")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()


def _send(page: Page, text: str) -> None:
    expect(page.locator("[data-send-button]")).to_be_enabled()
    composer = page.get_by_label("Message")
    composer.fill(text)
    composer.press("Enter")


def test_an_entry_staged_on_a_new_chat_reaches_the_first_answers_system_prompt(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _write_entry(page, "Cat", "The cat is called Miso.")
    fake_llm.enqueue(Script(text="Your cat is called Miso."), Script(text="Cat"))
    _open_new_chat(page, fake_model)

    page.get_by_text("Pin archive entries", exact=True).click()
    page.get_by_label("Pin archive entries to this chat").fill("cat")
    page.get_by_role("link", name="Pin “Cat”").click()
    expect(page.get_by_role("checkbox", name="Cat")).to_be_checked()
    _send(page, "What is my cat called?")

    answer = _last_answer(page)
    expect(answer).to_have_class(COMPLETE)
    expect(answer.locator(".message-content")).to_have_text("Your cat is called Miso.")
    system = system_message(fake_llm.chat_requests[0])
    assert "Pinned memory" in system and "The cat is called Miso." in system
    expect(page.locator("#chat-pins .pin-summary")).to_have_text("Pins · 1")


def test_an_entry_pinned_from_the_chats_header_reaches_the_next_answer(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _write_entry(page, "Project", "The codename is Heron.")
    fake_llm.enqueue(Script(text="Hello."), Script(text="Greeting"), Script(text="Heron."))
    _open_new_chat(page, fake_model)
    _send(page, "Hello")
    expect(_last_answer(page)).to_have_class(COMPLETE)
    assert "Heron" not in system_message(fake_llm.chat_requests[0])

    page.locator("#chat-pins .pin-summary").click()
    page.get_by_label("Pin an entry").fill("codename")
    page.get_by_role("button", name="Pin “Project”").click()
    expect(page.get_by_role("button", name="Unpin Project")).to_be_visible()
    assert ChatPin.objects.count() == 1
    page.locator("#chat-pins .pin-summary").click()  # closed again
    _send(page, "What is the codename?")

    answer = _last_answer(page)
    expect(answer).to_have_class(COMPLETE)
    expect(answer.locator(".message-content")).to_have_text("Heron.")
    assert "The codename is Heron." in system_message(fake_llm.chat_requests[-1])


def test_an_entry_the_model_writes_with_write_archive_appears_on_the_archive_page(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    provider_key_set(provider=Provider.objects.get(slug="fake-provider"), api_key="sk-test")
    Model.objects.filter(id=fake_model).update(supports_tools=True)
    note = {"action": "create", "title": "Vet", "body": "Dr. Rossi, Tuesdays.", "tags": ["pets"]}
    fake_llm.enqueue(
        Script(tool_calls=[ToolCall(name="write_archive", arguments=note)]),
        Script(text="Noted."),
        Script(text="Vet"),
    )
    _open_new_chat(page, fake_model)
    _send(page, "Remember: the vet is Dr. Rossi, on Tuesdays.")
    expect(_last_answer(page)).to_have_class(COMPLETE)

    tool_result = fake_llm.chat_requests[1].messages[-1]
    assert tool_result["role"] == "tool" and '"slug":"vet"' in tool_result["content"]
    page.get_by_role("link", name="Archive", exact=True).click()
    listed = page.locator("#archive-entries").get_by_role("link", name="Vet")
    expect(listed).to_be_visible()
    listed.click()
    expect(page.get_by_text("Dr. Rossi, Tuesdays.")).to_be_visible()


def test_a_pin_the_model_adds_with_manage_chat_pins_shows_in_the_header_without_a_reload(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    provider_key_set(provider=Provider.objects.get(slug="fake-provider"), api_key="sk-test")
    Model.objects.filter(id=fake_model).update(supports_tools=True)
    _write_entry(page, "Garden", "Tomatoes on the south wall.")
    fake_llm.enqueue(Script(text="Hello."), Script(text="Greeting"))
    _open_new_chat(page, fake_model)
    _send(page, "Hello")
    expect(_last_answer(page)).to_have_class(COMPLETE)
    summary = page.locator("#chat-pins .pin-summary")
    expect(summary).to_have_text("Pins")

    pin = {"action": "pin", "slug": "garden"}
    fake_llm.enqueue(
        Script(tool_calls=[ToolCall(name="manage_chat_pins", arguments=pin)]),
        Script(text="Pinned your garden notes."),
    )
    _send(page, "Keep my garden notes in mind here.")
    expect(page.get_by_text("Pinned your garden notes.")).to_be_visible()

    expect(summary).to_have_text("Pins · 1")
    assert ChatPin.objects.count() == 1
