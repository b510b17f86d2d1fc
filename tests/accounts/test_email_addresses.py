"""An address belongs to one account: adding or making primary another's is refused, clearly."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.db.models.signals import pre_save
from django.test import Client

from accounts.models import User
from tests.accounts.helpers import login

pytestmark = pytest.mark.django_db

_TAKEN = "A user is already registered with this email address."


def _addresses(user: User) -> list[tuple[str, bool, bool]]:
    return sorted(
        EmailAddress.objects.filter(user=user).values_list("email", "primary", "verified")
    )


@pytest.fixture
def alice_on_her_addresses(alice: User) -> Client:
    client = Client()
    login(client, "alice@example.com")
    client.get("/accounts/email/")  # allauth records her sign-in address here
    return client


def test_alice_adds_an_address_of_her_own(alice: User, alice_on_her_addresses: Client) -> None:
    alice_on_her_addresses.post(
        "/accounts/email/", {"email": "alice@work.example", "action_add": ""}
    )
    assert ("alice@work.example", False, False) in _addresses(alice)


@pytest.mark.parametrize("held_as", ["account email", "added address", "mixed-case account email"])
def test_alice_cannot_add_an_address_bob_holds(
    alice: User, bob: User, alice_on_her_addresses: Client, held_as: str
) -> None:
    taken = "bob@example.com"
    if held_as == "added address":
        taken = "bob@work.example"
        EmailAddress.objects.create(user=bob, email=taken)
    if held_as == "mixed-case account email":  # e.g. typed so in the admin
        User.objects.filter(id=bob.id).update(email="Bob@Example.com")
    before = _addresses(alice)
    response = alice_on_her_addresses.post(
        "/accounts/email/", {"email": taken.upper(), "action_add": ""}
    )
    assert response.status_code == 200
    assert _TAKEN in response.content.decode()
    assert _addresses(alice) == before


def test_making_primary_an_address_bob_holds_is_refused_with_a_clear_error(
    alice: User, bob: User, alice_on_her_addresses: Client
) -> None:
    # Added before the add was refused (or in a race): alice has bob's address on file.
    EmailAddress.objects.create(user=alice, email="bob@example.com")
    before = _addresses(alice)
    response = alice_on_her_addresses.post(
        "/accounts/email/", {"email": "bob@example.com", "action_primary": ""}, follow=True
    )
    assert response.status_code == 200
    assert _TAKEN in response.content.decode()
    assert _addresses(alice) == before
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.email, bob.email) == ("alice@example.com", "bob@example.com")


def test_alice_makes_her_own_address_primary(alice: User, alice_on_her_addresses: Client) -> None:
    EmailAddress.objects.create(user=alice, email="alice@work.example")
    alice_on_her_addresses.post(
        "/accounts/email/", {"email": "alice@work.example", "action_primary": ""}
    )
    alice.refresh_from_db()
    assert alice.email == "alice@work.example"


def test_an_address_bob_takes_while_alice_makes_it_primary_changes_nothing(
    alice: User, bob: User, alice_on_her_addresses: Client
) -> None:
    EmailAddress.objects.create(user=alice, email="bob@work.example")
    before = _addresses(alice)

    def bob_takes_it_meanwhile(**kwargs: object) -> None:
        User.objects.filter(id=bob.id).update(email="bob@work.example")

    # allauth first unmarks alice's old primary address: that is when bob's write lands.
    pre_save.connect(bob_takes_it_meanwhile, sender=EmailAddress)
    try:
        response = alice_on_her_addresses.post(
            "/accounts/email/", {"email": "bob@work.example", "action_primary": ""}, follow=True
        )
    finally:
        pre_save.disconnect(bob_takes_it_meanwhile, sender=EmailAddress)
    assert _TAKEN in response.content.decode()
    assert _addresses(alice) == before  # her old primary address is primary still
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
