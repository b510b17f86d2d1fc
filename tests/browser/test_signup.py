"""A guest opens the app, signs up, and lands logged in."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from accounts.models import User
from tests.helpers import PASSWORD


def test_a_guest_signs_up_and_lands_logged_in(page: Any) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="What can I help with?")).to_be_visible()
    page.locator(".account-summary").click()
    expect(page.locator(".account-menu")).to_contain_text("Guest")
    page.locator(".account-menu").get_by_role("link", name="Sign up").click()

    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()

    page.wait_for_url("**/")
    expect(page.locator(".account-name")).to_have_text("newcomer")
    user = User.objects.get(email="newcomer@example.com")
    assert not user.is_guest
    cookies = {cookie["name"] for cookie in page.context.cookies()}
    assert "sessionid" in cookies
    assert "vero_guest" not in cookies
