from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_alice_saves_her_preferences(alice_client: Client, alice: User) -> None:
    response = alice_client.post(
        "/settings/", {"name": "Al", "occupation": "Pilot", "custom_instructions": "Use metric."}
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.name, alice.occupation, alice.custom_instructions) == (
        "Al",
        "Pilot",
        "Use metric.",
    )


def test_an_htmx_save_returns_only_the_form(alice_client: Client) -> None:
    response = alice_client.post(
        "/settings/",
        {"name": "Al", "occupation": "", "custom_instructions": ""},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b'id="preferences-form"' in response.content
    assert b"<html" not in response.content
    assert b"Saved." in response.content


def test_an_oversized_preference_is_refused_and_changes_nothing(
    alice_client: Client, alice: User
) -> None:
    response = alice_client.post(
        "/settings/", {"name": "x" * 500, "occupation": "", "custom_instructions": ""}
    )
    assert response.status_code == 422
    assert b"at most 120 characters" in response.content
    alice.refresh_from_db()
    assert alice.name == "Alice"


def test_a_guest_without_a_row_sees_empty_preferences_and_no_row_is_made(client: Client) -> None:
    response = client.get("/settings/")
    assert response.status_code == 200
    assert User.objects.count() == 0


def test_the_shell_shows_the_tier_badge(alice_client: Client) -> None:
    from django.core.management import call_command

    call_command("seed_registry")
    page = alice_client.get("/").content
    assert b"tier-badge" in page
    assert b"Regular" in page
