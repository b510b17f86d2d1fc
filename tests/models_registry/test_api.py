"""GET /api/models: what the current user may pick, grouped by creator, with capabilities."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from models_registry.models import Model, Provider, Tier
from models_registry.services import SeedReport

pytestmark = pytest.mark.django_db


def _ids(payload: dict[str, Any]) -> set[str]:
    return {model["id"] for creator in payload["creators"] for model in creator["models"]}


def test_a_new_visitor_sees_the_guest_models_grouped_by_creator(
    registry: SeedReport, platform_keys: Settings, client: Client
) -> None:
    response = client.get("/api/models")

    assert response.status_code == 200
    payload = response.json()
    assert _ids(payload) == {
        "openai:gpt-6-luna",
        "google:gemini-3.5-flash-lite",
        "anthropic:claude-haiku-5.5",
    }
    assert [creator["slug"] for creator in payload["creators"]] == ["anthropic", "google", "openai"]
    assert payload["default_model"] == "openai:gpt-6-luna"
    assert User.objects.count() == 0  # looking creates no guest row


def test_each_model_carries_its_capabilities(
    registry: SeedReport, platform_keys: Settings, guest_client: Client
) -> None:
    payload = guest_client.get("/api/models").json()

    google = next(creator for creator in payload["creators"] if creator["slug"] == "google")
    assert google["name"] == "Google"
    assert google["models"] == [
        {
            "id": "google:gemini-3.5-flash-lite",
            "name": "Gemini 3.5 Flash-Lite",
            "byok": False,
            "capabilities": {
                "input_modalities": ["image", "file", "audio", "video"],
                "tools": True,
                "reasoning": True,
                "context_window": 1048576,
                "max_output_tokens": 65536,
            },
        }
    ]


def test_alice_sees_the_regular_tier(
    registry: SeedReport, platform_keys: Settings, alice_client: Client
) -> None:
    ids = _ids(alice_client.get("/api/models").json())

    assert "openai:gpt-5.2" in ids
    assert "anthropic:claude-sonnet-5.5" in ids
    assert "openai:gpt-6.1-sol" not in ids


def test_a_pro_user_sees_every_usable_model(
    registry: SeedReport, platform_keys: Settings, alice: User, alice_client: Client
) -> None:
    alice.tier = Tier.objects.get(slug="pro")
    alice.save()

    ids = _ids(alice_client.get("/api/models").json())

    assert ids == set(Model.objects.values_list("id", flat=True))


def test_models_that_cannot_be_called_are_not_offered(
    registry: SeedReport, no_platform_keys: Settings, alice_client: Client
) -> None:
    no_platform_keys.OPENAI_API_KEY = "sk-env-openai-1111"
    Model.objects.filter(id="openai:gpt-5.2").update(enabled=False)

    ids = _ids(alice_client.get("/api/models").json())

    assert ids == {"openai:gpt-6-luna", "openai:gpt-6.1-terra"}  # only OpenAI has a key

    Provider.objects.filter(slug="openai").update(enabled=False)
    payload = alice_client.get("/api/models").json()
    assert payload == {"default_model": None, "creators": []}


def test_only_get_is_allowed(registry: SeedReport, alice_client: Client) -> None:
    assert alice_client.post("/api/models").status_code == 405
