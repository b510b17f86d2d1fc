"""The generated title of a new chat reaches its header, the tab's title and the sidebar."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.fake_provider import FakeProvider, Script


def test_a_new_chats_generated_title_shows_in_the_header_tab_and_sidebar_without_reload(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text="Pack warm clothes."), Script(text="Mountain weekend"))
    page.goto("/")
    page.get_by_label("Model").select_option(fake_model)
    page.get_by_label("Message").fill("Help me plan a relaxing weekend in the mountains")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".chat-title-text")).to_have_text(
        "Help me plan a relaxing weekend in the mountains"
    )
    page.evaluate("window.notReloaded = true")

    expect(page.locator(".chat-title-text")).to_have_text("Mountain weekend")
    expect(page).to_have_title("Mountain weekend · Vero")
    expect(page.locator("#chat-list .chat-link")).to_have_text(["Mountain weekend"])
    assert page.evaluate("window.notReloaded") is True
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f-]+/$"))
