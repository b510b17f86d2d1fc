"""Who becomes an administrator: ADMIN_USER_ID, or the account that verified ADMIN_EMAIL."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from tests.accounts.helpers import email_confirm, login
from tests.helpers import PASSWORD
from tests.live_http import HttpSession, console_link, watched_server

pytestmark = pytest.mark.django_db


def _is_admin(user: User) -> bool:
    user.refresh_from_db()
    return user.is_staff and user.is_superuser


@pytest.mark.parametrize("verified", [True, False])
def test_the_admin_email_makes_staff_and_superuser_on_login_only_once_verified(
    bob: User, settings: SettingsWrapper, verified: bool
) -> None:
    settings.ADMIN_EMAIL = "Bob@Example.com"
    EmailAddress.objects.create(user=bob, email="bob@example.com", primary=True, verified=verified)
    login(Client(), "bob@example.com")
    assert _is_admin(bob) is verified


def test_the_admin_user_id_becomes_staff_and_superuser_on_login(
    bob: User, settings: SettingsWrapper
) -> None:
    settings.ADMIN_USER_ID = str(bob.id)
    login(Client(), "bob@example.com")
    assert _is_admin(bob)


def test_other_users_are_not_made_admins(alice: User, settings: SettingsWrapper) -> None:
    settings.ADMIN_EMAIL = "bob@example.com"
    settings.ADMIN_USER_ID = "00000000-0000-0000-0000-000000000000"
    login(Client(), "alice@example.com")
    assert not _is_admin(alice)


def test_signing_up_with_the_admin_email_grants_nothing_until_it_is_verified(
    settings: SettingsWrapper,
) -> None:
    settings.ADMIN_EMAIL = "root@example.com"
    client = Client()
    client.post(
        "/accounts/signup/",
        {"email": "root@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    root = User.objects.get(email="root@example.com")
    assert not _is_admin(root)

    email_confirm(client, "root@example.com")
    assert _is_admin(root)  # at once, without logging in again
    assert client.get("/admin/").status_code == 200


def test_alice_cannot_make_herself_admin_by_adding_the_admin_email(
    alice: User, settings: SettingsWrapper
) -> None:
    settings.ADMIN_EMAIL = "root@example.com"  # no account holds it yet (a fresh deploy)
    client = Client()
    login(client, "alice@example.com")
    client.post("/accounts/email/", {"email": "root@example.com", "action_add": ""})
    client.post("/accounts/email/", {"email": "root@example.com", "action_primary": ""})
    alice.refresh_from_db()
    assert alice.email == "root@example.com"  # allowed: verification is off by default

    client.post("/accounts/logout/")
    login(client, "root@example.com")
    assert not _is_admin(alice)
    email_confirm(client, "alice@example.com")  # verifying another address of hers
    assert not _is_admin(alice)
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_operator_verifies_the_admin_email_from_the_console_mail(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The README's path on a fresh deploy, over HTTP, with the mail printed by the server."""
    with watched_server(ADMIN_EMAIL="root@example.com") as server:
        operator = HttpSession(server.url)
        operator.get("/accounts/signup/")
        fields = {"email": "root@example.com", "password1": PASSWORD, "password2": PASSWORD}
        assert operator.post("/accounts/signup/", fields).url == server.url + "/"
        assert "/admin/login/" in operator.get("/admin/").url  # not an admin yet

        operator.get("/accounts/email/")
        operator.post("/accounts/email/", {"email": "root@example.com", "action_send": ""})
        link = console_link(capfd, "/accounts/confirm-email/")
        confirm_page = operator.get(link)
        assert confirm_page.status == 200
        assert "root@example.com" in confirm_page.text
        operator.post(confirm_page.url, {})

        admin = operator.get("/admin/")
    assert admin.url == server.url + "/admin/"
    assert "Site administration" in admin.text
    assert User.objects.get(email="root@example.com").is_superuser
