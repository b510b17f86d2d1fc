"""An admin adds an OpenAI-compatible provider in the control panel and tests its connection."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from accounts.models import User
from models_registry.models import Provider
from tests.fake_provider import FakeProvider
from tests.helpers import PASSWORD

TEST_CONNECTION = "Test the connection (lists the provider's models)"


def _log_in_to_admin(page: Page, admin: User) -> None:
    page.goto("/admin/")
    assert admin.email is not None
    page.get_by_label("Email:").fill(admin.email)
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def _add_custom_provider(page: Page, *, name: str, base_url: str, api_key: str) -> None:
    page.get_by_role("link", name="Providers", exact=True).click()
    page.get_by_role("link", name="Add provider").click()
    page.get_by_label("Slug:").fill("fake-server")
    page.get_by_label("Name:").fill(name)
    page.get_by_label("Kind:").select_option("custom")
    page.get_by_label("Base url:").fill(base_url)
    page.get_by_label("API key:").fill(api_key)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")


def _run_test_connection(page: Page, *, provider_name: str) -> None:
    row = page.locator("#result_list tbody tr", has_text=provider_name)
    row.get_by_role("checkbox").check()
    page.get_by_label("Action:").select_option(label=TEST_CONNECTION)
    page.get_by_role("button", name="Run").click()


def test_an_admin_adds_a_custom_provider_and_its_connection_test_succeeds(
    fresh_server_page: Page, live_admin: User, fake_llm: FakeProvider
) -> None:
    page = fresh_server_page
    fake_llm.require_api_key("sk-fake-admin-1234")
    _log_in_to_admin(page, live_admin)

    _add_custom_provider(
        page, name="Fake server", base_url=fake_llm.base_url, api_key="sk-fake-admin-1234"
    )
    _run_test_connection(page, provider_name="Fake server")

    expect(page.locator(".messagelist .success")).to_have_text(
        "Fake server: Connected: the provider lists 2 models."
    )
    provider = Provider.objects.get(slug="fake-server")
    assert provider.kind == "custom"
    assert provider.base_url == fake_llm.base_url
    assert provider.api_key_last_four == "1234"
    assert "sk-fake-admin-1234" not in page.content()
    (ping,) = [request for request in fake_llm.requests if request.path == "/v1/models"]
    assert ping.api_key == "sk-fake-admin-1234"


def test_a_connection_test_with_a_wrong_key_shows_the_providers_refusal(
    fresh_server_page: Page, live_admin: User, fake_llm: FakeProvider
) -> None:
    page = fresh_server_page
    fake_llm.require_api_key("sk-the-right-key")
    _log_in_to_admin(page, live_admin)

    _add_custom_provider(
        page, name="Fake server", base_url=fake_llm.base_url, api_key="sk-a-wrong-key"
    )
    _run_test_connection(page, provider_name="Fake server")

    expect(page.locator(".messagelist .error")).to_contain_text(
        "Fake server: The provider refused the API key"
    )
    expect(page.locator(".messagelist .success")).to_have_count(0)
