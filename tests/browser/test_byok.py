"""Own keys in the browser: Alice chats with her own endpoint; a guest hits the limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Page, expect

from accounts.models import User
from byok.models import UserByokModel
from models_registry.models import Tier
from tests.fake_provider import FakeProvider, Script
from tests.helpers import fake_model_register
from tests.live_server import LiveServer, live_server_start


@pytest.fixture(scope="module")
def byok_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    """Daphne allowing private networks, so the fake provider on 127.0.0.1 can be an endpoint."""
    with django_db_blocker.unblock():
        server = live_server_start(extra_env={"BYOK_ALLOW_PRIVATE_NETWORKS": "true"})
    yield server
    server.stop()


@pytest.fixture
def byok_page(browser: Any, byok_server: LiveServer, transactional_db: None) -> Iterator[Page]:
    context = browser.new_context(base_url=byok_server.url)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _log_in(page: Page, user: User) -> None:
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": page.url or "http://x"}]
    )


def _send(page: Page, text: str) -> None:
    composer = page.get_by_label("Message")
    composer.fill(text)
    composer.press("Enter")


def test_alice_adds_her_own_endpoint_adds_its_model_and_chats_with_it(
    byok_page: Page, byok_server: LiveServer, alice: User, fake_llm: FakeProvider
) -> None:
    page = byok_page
    page.goto("/healthz")
    _log_in(page, alice)
    fake_llm.set_models(["fake-model", "llama3.1:8b"])

    page.goto("/settings/keys/")
    page.get_by_label("Name", exact=True).fill("Fake lab")
    page.get_by_label("Base URL").fill(fake_llm.base_url)
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#byok-panel")).to_contain_text("Fake lab is added")

    page.get_by_role("link", name="List models").click()
    expect(page.locator(".byok-listing")).to_contain_text("llama3.1:8b")
    page.get_by_role("button", name="Add llama3.1:8b").click()
    expect(page.locator("#byok-panel")).to_contain_text("llama3.1:8b is added to your models.")
    expect(page.locator(".byok-model")).to_contain_text("byok:custom:fake-lab:llama3.1:8b")
    assert UserByokModel.objects.get().user_id == alice.id

    page.goto("/")
    picker = page.get_by_label("Model")
    expect(picker.locator("optgroup[label='Your endpoint: Fake lab'] option")).to_have_text(
        re.compile(r"llama3\.1:8b · your key")
    )
    picker.select_option("byok:custom:fake-lab:llama3.1:8b")
    fake_llm.enqueue(Script(text=["Served ", "by ", "your ", "own ", "lab."]))
    _send(page, "Who answers?")

    answer = page.locator("article.message-assistant").last
    expect(answer).to_have_class(re.compile(r"(^|\s)status-complete(\s|$)"))
    expect(answer.locator(".message-content")).to_have_text("Served by your own lab.")
    assert fake_llm.chat_requests[0].json["model"] == "llama3.1:8b"


def test_a_guest_who_used_up_their_messages_sees_when_the_next_one_comes(
    byok_page: Page, fake_llm: FakeProvider
) -> None:
    page = byok_page
    model_id = fake_model_register(fake_llm.base_url)
    Tier.objects.filter(slug=Tier.GUEST).update(bucket_capacity=1, refill_amount=1)
    fake_llm.enqueue(Script(text="The only answer."), Script(text="A title"))

    page.goto("/")
    page.get_by_label("Model").select_option(model_id)
    _send(page, "First question")
    answer = page.locator("article.message-assistant").last
    expect(answer.locator(".message-content")).to_have_text("The only answer.")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    _send(page, "Second question")

    expect(page.locator("#composer-error")).to_contain_text(
        re.compile(r"Limit reached, next message in \d+")
    )
    expect(page.locator("article.message-user")).to_have_count(1)
