"""A failed request says so in words and loses nothing; a login in another tab breaks no send."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, Route, expect

from accounts.models import User
from chats.models import Chat, Message
from models_registry.models import Model
from tests.browser.helpers import live_log_in
from tests.fake_provider import FakeProvider, Script


def _open_new_chat(page: Page, model_id: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="What can I help with?")).to_be_visible()
    page.get_by_label("Model").select_option(model_id)


def _type_and_send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_a_send_after_logging_in_in_another_tab_goes_through(
    page: Page, alice: User, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text="Hello from the other tab."), Script(text="Greetings"))
    _open_new_chat(page, fake_model)
    token_before = _csrf_cookie(page)
    other_tab = page.context.new_page()

    live_log_in(other_tab, alice)
    expect(other_tab.locator(".account-name")).to_have_text("Alice")
    assert _csrf_cookie(page) != token_before  # the login rotated the token
    _type_and_send(page, "Are you there?")

    expect(page.locator("article.message-user .message-content")).to_have_text("Are you there?")
    expect(page.locator("article.message-assistant .message-content")).to_have_text(
        "Hello from the other tab."
    )
    expect(page.locator("#composer-error")).to_be_empty()
    assert "Forbidden" not in page.content()
    assert Chat.objects.get().user_id == alice.id


def _csrf_cookie(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


def _fail_with(status: int) -> Any:
    def handler(route: Route) -> None:
        body = "<!DOCTYPE html><html><body><h1>Server Error (500)</h1></body></html>"
        route.fulfill(status=status, body=body, content_type="text/html")

    return handler


def test_a_server_error_shows_a_readable_message_and_keeps_the_typed_text(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _open_new_chat(page, fake_model)
    page.route(re.compile(r".*/c/send$"), _fail_with(502))

    _type_and_send(page, "Please keep this text")

    expect(page.locator("#composer-error")).to_contain_text("The server had a problem (error 502)")
    expect(page.get_by_label("Message")).to_have_value("Please keep this text")
    expect(page.locator("#messages")).to_be_empty()
    assert "Server Error" not in page.content()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert Message.objects.count() == 0


def test_a_lost_connection_shows_a_readable_message_and_the_retry_works(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text="Back online."), Script(text="Reconnected"))
    _open_new_chat(page, fake_model)
    page.route(re.compile(r".*/c/send$"), lambda route: route.abort("connectionreset"))

    _type_and_send(page, "Is the network up?")

    expect(page.locator("#composer-error")).to_contain_text("Could not reach the server")
    expect(page.get_by_label("Message")).to_have_value("Is the network up?")
    expect(page.locator("#messages")).to_be_empty()

    page.unroute(re.compile(r".*/c/send$"))
    page.get_by_role("button", name="Send").click()

    expect(page.locator("article.message-assistant .message-content")).to_have_text("Back online.")
    expect(page.get_by_label("Message")).to_have_value("")
    expect(page.locator("#composer-error")).to_be_empty()


def test_a_send_refused_for_its_csrf_token_is_retried_once_with_the_fresh_one(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text="Made it."), Script(text="Retried"))
    _open_new_chat(page, fake_model)
    # As if the cookie had been replaced after the page was rendered: the first send carries a
    # token the server refuses; the retry reads the cookie again.
    attempts: list[str] = []

    def spoil_first(route: Route) -> None:
        attempts.append(route.request.headers.get("x-csrftoken", ""))
        if len(attempts) == 1:
            route.continue_(
                headers={**route.request.headers, "x-csrftoken": "spoiled"},
                post_data=re.sub(
                    r"csrfmiddlewaretoken=[^&]*",
                    "csrfmiddlewaretoken=spoiled",
                    route.request.post_data or "",
                ),
            )
        else:
            route.continue_()

    page.route(re.compile(r".*/c/send$"), spoil_first)

    _type_and_send(page, "Second time lucky")

    expect(page.locator("article.message-assistant .message-content")).to_have_text("Made it.")
    assert len(attempts) == 2
    expect(page.locator("#composer-error")).to_be_empty()
    assert "Please try again" not in page.locator("#messages").inner_html()


def test_a_send_refused_for_its_csrf_token_twice_says_so_and_changes_nothing(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _open_new_chat(page, fake_model)

    def spoil(route: Route) -> None:
        body = re.sub(r"csrfmiddlewaretoken=[^&]*", "", route.request.post_data or "")
        route.continue_(headers={**route.request.headers, "x-csrftoken": "spoiled"}, post_data=body)

    page.route(re.compile(r".*/c/send$"), spoil)

    _type_and_send(page, "Will this be refused?")

    expect(page.locator("#composer-error")).to_contain_text("The server refused this request")
    expect(page.get_by_label("Message")).to_have_value("Will this be refused?")
    expect(page.locator("#messages")).to_be_empty()
    assert Message.objects.count() == 0


def test_a_send_the_server_refuses_shows_its_reason_and_keeps_the_typed_text(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    _open_new_chat(page, fake_model)
    Model.objects.filter(id=fake_model).update(enabled=False)  # gone since the page was shown

    _type_and_send(page, "Text worth keeping")

    expect(page.locator("#composer-error [role=alert]")).not_to_be_empty()
    expect(page.get_by_label("Message")).to_have_value("Text worth keeping")
    expect(page.locator("#messages")).to_be_empty()
