"""A fresh install without any provider key: the composer explains how to get a first model."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from accounts.models import User
from chats.models import Chat
from tests.browser.helpers import live_log_in


def test_a_guest_on_a_fresh_install_sees_why_send_is_disabled_and_where_to_add_a_key(
    page: Page,
) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto("/")

    note = page.locator("#no-model-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("No model is available yet")
    expect(note).to_contain_text("ADMIN_EMAIL")  # nobody administers this server yet
    expect(page.get_by_label("Model")).to_be_disabled()
    send = page.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    expect(send).to_have_attribute("aria-describedby", "no-model-note")

    page.get_by_label("Message").fill("Hello?")
    page.get_by_label("Message").press("Enter")
    expect(send).to_be_disabled()  # still, after the page's scripts ran
    assert not any(url.endswith("/c/send") for url in requests)
    assert Chat.objects.count() == 0

    note.get_by_role("link", name="Add your own provider key or endpoint").click()
    expect(page).to_have_url(re.compile(r"/settings/keys/$"))
    expect(page.get_by_role("heading", name="Keys & endpoints")).to_be_visible()


def test_an_administrator_on_a_fresh_install_is_sent_to_the_providers(
    page: Page, admin_user: User
) -> None:
    live_log_in(page, admin_user)
    page.goto("/")

    note = page.locator("#no-model-note")
    expect(note).to_contain_text("OPENAI_API_KEY")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    note.get_by_role("link", name="Providers in Administration").click()
    expect(page).to_have_url(re.compile(r"/admin/models_registry/provider/$"))
    expect(page.get_by_role("heading", name="Select provider to change")).to_be_visible()
