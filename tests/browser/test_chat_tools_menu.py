"""The composer's tools menu: shown for a model that calls tools, staged for a new chat and sent
with its first message, saved at once in an existing chat."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from chats.models import Chat
from models_registry.models import Model, ModelProvider
from tests.fake_provider import FakeProvider


def _plain_model_add(tool_model: str) -> str:
    """A second model on the fake provider, which calls no tools."""
    source = Model.objects.get(id=tool_model)
    plain = Model.objects.create(
        id="fake:plain-model", creator=source.creator, display_name="Plain Model",
        input_modalities=["text"], supports_tools=False,
    )  # fmt: skip
    route = ModelProvider.objects.get(model=source)
    ModelProvider.objects.create(
        model=plain, provider=route.provider, provider_model_id="plain-model", is_default=True,
        price_input_per_million=1, price_output_per_million=2,
    )  # fmt: skip
    return plain.id


def _settings_when(chat: Chat, expected: dict[str, object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        chat.refresh_from_db()
        if chat.settings == expected:
            return
        assert time.monotonic() < deadline, f"the chat's settings are {chat.settings}"
        time.sleep(0.05)


def test_the_tools_menu_shows_only_for_a_model_that_calls_tools(
    page: Page, fake_model: str
) -> None:
    Model.objects.filter(id=fake_model).update(supports_tools=True)
    plain = _plain_model_add(fake_model)
    page.goto("/")
    tools = page.locator("summary", has_text="Tools")

    page.get_by_label("Model").select_option(fake_model)
    expect(tools).to_be_visible()
    page.get_by_label("Model").select_option(plain)
    expect(tools).to_be_hidden()


def _offered(fake_llm: FakeProvider, number: int) -> set[str]:
    """The tools offered with the answer's `number`th model call (not the title's)."""
    answers = [request for request in fake_llm.chat_requests if request.json.get("tools")]
    return {tool["function"]["name"] for tool in answers[number].json["tools"]}


def test_a_new_chats_tools_choice_goes_with_its_first_message_and_later_changes_are_saved(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    Model.objects.filter(id=fake_model).update(supports_tools=True)
    page.goto("/")
    page.get_by_label("Model").select_option(fake_model)
    # From the keyboard: open the menu, untick "Run code".
    page.locator("summary", has_text="Tools").focus()
    page.keyboard.press("Enter")
    run_code = page.get_by_label("Run code")
    expect(run_code).to_be_checked()
    run_code.focus()
    page.keyboard.press("Space")
    expect(run_code).not_to_be_checked()

    composer = page.get_by_label("Message")
    composer.fill("Hello")
    composer.press("Enter")
    expect(page.locator("article.message-assistant").last).to_have_class(
        re.compile(r"\bstatus-complete\b")
    )
    chat = Chat.objects.get()
    assert chat.settings == {"model": fake_model, "tools": ["archive", "chat_tree", "weather"]}
    # The model was offered the chosen groups' tools only.
    assert "run_code" not in _offered(fake_llm, 0)
    assert {"get_weather", "read_chat_tree"} <= _offered(fake_llm, 0)

    # Now the chat exists: a change is saved at once, merged into its settings.
    page.locator("summary", has_text="Tools").click()
    page.get_by_label("Weather").uncheck()
    _settings_when(chat, {"model": fake_model, "tools": ["archive", "chat_tree"]})
    page.reload()
    page.locator("summary", has_text="Tools").click()
    expect(page.get_by_label("Weather")).not_to_be_checked()
    expect(page.get_by_label("Run code")).not_to_be_checked()
    expect(page.get_by_role("checkbox", name="Archive", exact=True)).to_be_checked()
    composer = page.get_by_label("Message")
    composer.fill("And now?")
    composer.press("Enter")
    expect(page.locator("article.message-assistant")).to_have_count(2)
    expect(page.locator("article.message-assistant").last).to_have_class(
        re.compile(r"\bstatus-complete\b")
    )
    assert "get_weather" not in _offered(fake_llm, 1) and "run_code" not in _offered(fake_llm, 1)
    assert "read_chat_tree" in _offered(fake_llm, 1)
