"""Guest → account: signing up or logging in moves what the guest owns, atomically."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.test import Client

from accounts import services
from accounts.models import User
from tests.helpers import PASSWORD, client_for_guest

COOKIE = "vero_guest"


@pytest.fixture
def chatty_guest(db: None) -> User:
    return User.objects.create(
        is_guest=True, name="Gus", occupation="Gardener", custom_instructions="Be brief."
    )


@pytest.fixture
def failing_mover() -> Iterator[None]:
    """A mover that writes to the account and then fails, as a broken app would."""

    def mover(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
        User.objects.filter(id=account_id).update(occupation="half-moved")
        raise RuntimeError("disk on fire")

    services.guest_mover_register("test-failing")(mover)
    yield
    services._guest_movers.pop("test-failing")


def test_signing_up_moves_the_guests_preferences_and_deletes_the_guest(chatty_guest: User) -> None:
    client = client_for_guest(chatty_guest)

    response = client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    account = User.objects.get(email="new@example.com")
    assert not account.is_guest
    assert (account.name, account.occupation, account.custom_instructions) == (
        "Gus",
        "Gardener",
        "Be brief.",
    )
    assert not User.objects.filter(id=chatty_guest.id).exists()
    cleared = response.cookies[COOKIE]
    assert cleared.value == ""
    assert cleared["max-age"] == 0
    assert client.session["_auth_user_id"] == str(account.id)


def test_logging_in_moves_the_guest_and_the_account_wins_conflicts(
    chatty_guest: User, alice: User
) -> None:
    client = client_for_guest(chatty_guest)

    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.name == "Alice"  # already set on the account: kept
    assert alice.occupation == "Gardener"  # empty on the account: taken from the guest
    assert not User.objects.filter(id=chatty_guest.id).exists()


def test_every_registered_mover_runs_with_both_ids(chatty_guest: User, alice: User) -> None:
    calls: list[tuple[uuid.UUID, uuid.UUID]] = []

    def mover(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
        calls.append((guest_id, account_id))

    services.guest_mover_register("test-recording")(mover)
    try:
        assert services.guest_upgrade(guest_id=chatty_guest.id, account=alice)
    finally:
        services._guest_movers.pop("test-recording")
    assert calls == [(chatty_guest.id, alice.id)]


def test_a_failing_move_leaves_both_users_untouched(
    chatty_guest: User, alice: User, failing_mover: None
) -> None:
    with pytest.raises(RuntimeError):
        services.guest_upgrade(guest_id=chatty_guest.id, account=alice)

    alice.refresh_from_db()
    assert (alice.name, alice.occupation, alice.custom_instructions) == ("Alice", "", "")
    guest = User.objects.get(id=chatty_guest.id)
    assert (guest.is_guest, guest.name, guest.occupation) == (True, "Gus", "Gardener")


def test_a_failing_move_still_logs_in_and_keeps_the_guest_for_next_time(
    chatty_guest: User, alice: User, failing_mover: None
) -> None:
    client = client_for_guest(chatty_guest)

    response = client.post(
        "/accounts/login/", {"login": "alice@example.com", "password": PASSWORD}, follow=True
    )

    assert response.status_code == 200
    assert b"could not move your guest chats" in response.content
    assert User.objects.filter(id=chatty_guest.id, is_guest=True).exists()
    alice.refresh_from_db()
    assert alice.occupation == ""


def test_a_guest_without_a_row_signs_up_with_nothing_to_move(db: None) -> None:
    client = Client()
    client.get("/")
    response = client.post(
        "/accounts/signup/",
        {"email": "fresh@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert list(User.objects.values_list("email", "is_guest")) == [("fresh@example.com", False)]
    assert response.cookies[COOKIE].value == ""


def test_an_upgrade_into_another_guest_is_refused(chatty_guest: User, guest: User) -> None:
    assert not services.guest_upgrade(guest_id=chatty_guest.id, account=guest)
    assert User.objects.filter(id=chatty_guest.id).exists()


def test_signing_up_with_a_taken_email_changes_nothing(chatty_guest: User, alice: User) -> None:
    client = client_for_guest(chatty_guest)
    response = client.post(
        "/accounts/signup/",
        {"email": "ALICE@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    assert User.objects.filter(id=chatty_guest.id, is_guest=True).exists()
