"""seed_registry: idempotent, refreshes untouched rows, keeps what an admin edited."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from models_registry.models import Creator, Model, ModelProvider, Provider, ProviderKind, Tier
from models_registry.selectors import model_ids_allowed_for_user, tier_for_user
from models_registry.services import REGISTRY_DATA, SeedReport, registry_seed

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Creator, Provider, Model, ModelProvider, Tier))


def test_seeding_inserts_the_curated_registry(registry: SeedReport) -> None:
    data = json.loads(REGISTRY_DATA.read_text())

    assert set(Model.objects.values_list("id", flat=True)) == {row["id"] for row in data["models"]}
    assert set(Tier.objects.values_list("slug", flat=True)) == {"guest", "regular", "pro"}
    assert set(Provider.objects.values_list("kind", flat=True)) == {
        "openai",
        "google",
        "openrouter",
        "xai",
    }
    sonnet = ModelProvider.objects.get(model_id="anthropic:claude-sonnet-5.5")
    assert sonnet.provider.slug == "openrouter"  # no direct Anthropic provider
    assert sonnet.provider_model_id == "anthropic/claude-sonnet-5.5"
    assert sonnet.is_default
    assert sonnet.price_input_per_million == Decimal("2")
    gpt = ModelProvider.objects.get(model_id="openai:gpt-5.2")
    assert (gpt.provider.slug, gpt.provider_model_id) == ("openai", "gpt-5.2")


def test_every_model_has_exactly_one_enabled_default_provider(registry: SeedReport) -> None:
    for model in Model.objects.all():
        assert model.routes.filter(enabled=True, is_default=True).count() == 1, model.id


def test_seeding_twice_changes_nothing(registry: SeedReport) -> None:
    before = _counts()

    second = registry_seed()

    assert _counts() == before
    assert (second.created, second.updated, second.kept_admin_edits) == (0, 0, 0)
    assert second.unchanged == registry.created


def test_the_command_says_what_it_did(db: None, settings: Settings) -> None:
    settings.OLLAMA_BASE_URL = ""
    out = StringIO()

    call_command("seed_registry", stdout=out)
    call_command("seed_registry", stdout=out)

    first, second = out.getvalue().splitlines()
    assert first.startswith("registry: ") and " 0 updated" in first
    assert second.startswith("registry: 0 created, 0 updated")


def test_an_admin_edit_survives_seeding_until_reset(
    registry: SeedReport, admin_client: Client
) -> None:
    model = Model.objects.get(id="openai:gpt-5.2")
    response = admin_client.post(
        f"/admin/models_registry/model/{model.pk}/change/",
        {
            "creator": model.creator_id,
            "display_name": "GPT-5.2 (house favourite)",
            "description": "",
            "supports_tools": "on",
            "context_window": "272000",
            "max_output_tokens": "128000",
            "enabled": "on",
            "routes-TOTAL_FORMS": "0",
            "routes-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    report = registry_seed()

    model.refresh_from_db()
    assert model.display_name == "GPT-5.2 (house favourite)"
    assert report.kept_admin_edits == 1

    registry_seed(reset=True)

    model.refresh_from_db()
    assert model.display_name == "GPT-5.2"
    assert not model.admin_edited


def test_rows_no_admin_touched_follow_a_newer_data_file(
    registry: SeedReport, tmp_path: Path
) -> None:
    data = json.loads(REGISTRY_DATA.read_text())
    for row in data["models"]:
        if row["id"] == "xai:grok-4.7":
            row["display_name"] = "Grok 4.7 (renamed upstream)"
            row["price"]["output"] = "5"
    newer = tmp_path / "registry.json"
    newer.write_text(json.dumps(data))

    report = registry_seed(data_file=newer)

    assert report.updated == 2
    assert Model.objects.get(id="xai:grok-4.7").display_name == "Grok 4.7 (renamed upstream)"
    route = ModelProvider.objects.get(model_id="xai:grok-4.7")
    assert route.price_output_per_million == Decimal("5")


def test_an_admin_edited_tier_keeps_its_models(registry: SeedReport) -> None:
    guest = Tier.objects.get(slug="guest")
    guest.allowed_models.set([Model.objects.get(id="openai:gpt-5.2")])
    guest.admin_edited = True
    guest.save()

    registry_seed()

    assert list(guest.allowed_models.values_list("id", flat=True)) == ["openai:gpt-5.2"]


def test_a_disabled_model_stays_disabled_after_seeding(registry: SeedReport) -> None:
    from models_registry.services import model_set_enabled

    model_set_enabled(model_ids=["openai:gpt-6.1-sol"], enabled=False)

    registry_seed()

    assert not Model.objects.get(id="openai:gpt-6.1-sol").enabled


def test_ollama_base_url_registers_a_local_ollama(db: None, settings: Settings) -> None:
    settings.OLLAMA_BASE_URL = "http://localhost:11434"

    registry_seed()

    ollama = Provider.objects.get(slug="ollama")
    assert ollama.kind == ProviderKind.CUSTOM
    assert ollama.base_url == "http://localhost:11434/v1"


def test_without_tier_rows_the_built_in_defaults_apply(
    db: None, settings: Settings, alice: User
) -> None:
    settings.GUEST_MODELS = ["openai:gpt-6-luna"]
    settings.REGULAR_MODELS = ["openai:gpt-6-luna", "openai:gpt-5.2"]

    assert tier_for_user(user=None) is None
    assert model_ids_allowed_for_user(user=None) == {"openai:gpt-6-luna"}
    assert model_ids_allowed_for_user(user=alice) == {"openai:gpt-6-luna", "openai:gpt-5.2"}


def test_the_pro_tier_includes_every_model(registry: SeedReport, alice: User) -> None:
    alice.tier = Tier.objects.get(slug="pro")
    alice.save()

    assert model_ids_allowed_for_user(user=alice) == set(Model.objects.values_list("id", flat=True))
