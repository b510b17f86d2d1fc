"""Sign-in, safe redirects, password reset and the admin's user list."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from tests.accounts.helpers import login

pytestmark = pytest.mark.django_db


def test_alice_logs_in_and_out(alice: User) -> None:
    client = Client()
    assert login(client, "alice@example.com") == "/"
    assert b"Alice" in client.get("/").content
    client.post("/accounts/logout/")
    assert b"Sign up" in client.get("/").content


def test_a_wrong_password_is_refused_with_a_clear_error(alice: User) -> None:
    response = Client().post(
        "/accounts/login/", {"login": "alice@example.com", "password": "wrong password"}
    )
    assert response.status_code == 200
    assert b"not correct" in response.content


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "http://evil.example",
        "https:evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_login_refuses_to_redirect_off_site(alice: User, target: str) -> None:
    location = login(Client(), "alice@example.com", next_url=target)
    assert location == "/"


def test_login_follows_a_same_site_next(alice: User) -> None:
    assert login(Client(), "alice@example.com", next_url="/settings/") == "/settings/"


def test_password_reset_sends_a_working_link(alice: User) -> None:
    client = Client()
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(
        r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", str(mail.outbox[0].body)
    )
    assert link is not None
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.group(1),
        {"password1": "a brand new passphrase", "password2": "a brand new passphrase"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a brand new passphrase")


def test_social_buttons_are_hidden_without_credentials() -> None:
    page = Client().get("/accounts/login/").content
    assert b"GitHub" not in page
    assert b"Google" not in page


@pytest.mark.parametrize("path", ["/accounts/google/login/", "/accounts/github/login/"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unconfigured_sign_in_provider_is_not_found(db: None, path: str, method: str) -> None:
    client = Client()
    response = getattr(client, method)(path)
    assert response.status_code == 404


def test_a_provider_turned_off_by_social_login_enabled_is_not_found(
    db: None, settings: SettingsWrapper
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}  # what SOCIAL_LOGIN_ENABLED=false leaves
    assert Client().post("/accounts/github/login/").status_code == 404


def test_social_buttons_appear_when_a_provider_is_configured(settings: SettingsWrapper) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "id", "secret": "secret"}], "SCOPE": ["user:email"]}
    }
    page = Client().get("/accounts/login/").content
    assert b"GitHub" in page


def test_the_admin_lists_users_with_guest_and_tier_filters(
    admin_client: Client, alice: User, guest: User
) -> None:
    guests = admin_client.get("/admin/accounts/user/?is_guest__exact=1")
    assert guests.status_code == 200
    assert f"guest {str(guest.id)[:8]}".encode() in guests.content
    assert b"alice@example.com" not in guests.content
    found = admin_client.get("/admin/accounts/user/?q=alice")
    assert b"alice@example.com" in found.content
    assert admin_client.get("/admin/accounts/user/?tier__id__exact=1").status_code == 200
    assert admin_client.get(f"/admin/accounts/user/{alice.id}/change/").status_code == 200


def test_the_admin_is_closed_to_regular_users(alice_client: Client) -> None:
    response = alice_client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
