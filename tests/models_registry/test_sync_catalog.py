"""sync_catalog: OpenRouter's model list (recorded sample) and LiteLLM's model map, offline."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models_registry.models import Model, ModelProvider, ProviderCatalog
from models_registry.services import SeedReport, catalog_entry_promote

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent / "openrouter_models_sample.json"


def _sync_sample() -> str:
    out = StringIO()
    call_command("sync_catalog", "--source", "openrouter", "--file", str(SAMPLE), stdout=out)
    return out.getvalue()


def test_syncing_the_openrouter_sample_records_every_model(registry: SeedReport) -> None:
    output = _sync_sample()

    assert output.strip() == "catalog (openrouter): 6 new, 0 refreshed"
    assert ProviderCatalog.objects.filter(provider__slug="openrouter").count() == 6


def test_capabilities_come_from_parameters_and_modalities(registry: SeedReport) -> None:
    _sync_sample()

    sonnet = ProviderCatalog.objects.get(provider_model_id="anthropic/claude-sonnet-5.5")
    assert sonnet.suggested_model_id == "anthropic:claude-sonnet-5.5"
    assert sonnet.input_modalities == ["image", "file"]
    assert sonnet.supports_tools and sonnet.supports_reasoning
    assert (sonnet.context_window, sonnet.max_output_tokens) == (1_000_000, 128_000)

    gemini = ProviderCatalog.objects.get(provider_model_id="google/gemini-3.8-flash")
    assert gemini.input_modalities == ["image", "file", "audio", "video"]

    llama = ProviderCatalog.objects.get(provider_model_id="meta-llama/llama-4-maverick:free")
    assert llama.suggested_model_id == "meta-llama:llama-4-maverick:free"
    assert llama.input_modalities == ["image"]
    assert not llama.supports_tools and not llama.supports_reasoning
    assert llama.max_output_tokens == 4028

    mistral = ProviderCatalog.objects.get(provider_model_id="mistralai/mistral-small-4")
    assert mistral.input_modalities == []  # from "text->text": no input_modalities list
    assert mistral.supports_tools and not mistral.supports_reasoning
    assert mistral.max_output_tokens is None


def test_per_token_prices_become_prices_per_million(registry: SeedReport) -> None:
    _sync_sample()

    sonnet = ProviderCatalog.objects.get(provider_model_id="anthropic/claude-sonnet-5.5")
    assert sonnet.price_input_per_million == Decimal("2")
    assert sonnet.price_output_per_million == Decimal("10")
    assert sonnet.price_cached_input_per_million == Decimal("0.1")
    assert sonnet.price_reasoning_per_million is None  # billed as output

    gemini = ProviderCatalog.objects.get(provider_model_id="google/gemini-3.8-flash")
    assert gemini.price_input_per_million == Decimal("0.75")
    assert gemini.price_output_per_million == Decimal("3.75")
    assert gemini.price_reasoning_per_million == Decimal("3.75")
    assert gemini.price_cached_input_per_million == Decimal("0.075")

    luna = ProviderCatalog.objects.get(provider_model_id="openai/gpt-6-luna")
    assert luna.price_input_per_million == Decimal("0.1")
    assert luna.price_cached_input_per_million == Decimal("0.01")

    free = ProviderCatalog.objects.get(provider_model_id="meta-llama/llama-4-maverick:free")
    assert (free.price_input_per_million, free.price_output_per_million) == (0, 0)

    auto = ProviderCatalog.objects.get(provider_model_id="openrouter/auto")
    assert auto.price_input_per_million is None  # "-1": priced per routed model


def test_syncing_again_refreshes_instead_of_duplicating(registry: SeedReport) -> None:
    _sync_sample()
    first_seen = ProviderCatalog.objects.get(provider_model_id="openai/gpt-6-luna").last_seen_at

    output = _sync_sample()

    assert output.strip() == "catalog (openrouter): 0 new, 6 refreshed"
    assert ProviderCatalog.objects.count() == 6
    again = ProviderCatalog.objects.get(provider_model_id="openai/gpt-6-luna").last_seen_at
    assert again > first_seen


def test_promoting_an_entry_creates_a_model_served_through_openrouter(
    registry: SeedReport,
) -> None:
    _sync_sample()
    entry = ProviderCatalog.objects.get(provider_model_id="mistralai/mistral-small-4")

    model = catalog_entry_promote(entry=entry)

    assert model.id == "mistralai:mistral-small-4"
    assert model.display_name == "Mistral Small 4"
    assert model.creator.name == "Mistral"
    assert model.supports_tools
    route = ModelProvider.objects.get(model=model)
    assert (route.provider.slug, route.provider_model_id) == ("openrouter", entry.provider_model_id)
    assert route.is_default and route.enabled
    assert route.price_output_per_million == Decimal("0.3")
    entry.refresh_from_db()
    assert entry.promoted_model_id == model.id


def test_promoting_an_entry_for_a_seeded_model_adds_a_second_route_not_a_default(
    registry: SeedReport,
) -> None:
    _sync_sample()
    entry = ProviderCatalog.objects.get(provider_model_id="openai/gpt-6-luna")

    model = catalog_entry_promote(entry=entry)

    assert model.id == "openai:gpt-6-luna"
    routes = {route.provider.slug: route.is_default for route in model.routes.all()}
    assert routes == {"openai": True, "openrouter": False}


def test_the_litellm_source_reads_a_model_map_file(registry: SeedReport, tmp_path: Path) -> None:
    model_map = {
        "sample_spec": {"mode": "chat"},
        "gpt-6-luna": {
            "litellm_provider": "openai",
            "mode": "chat",
            "max_input_tokens": 922000,
            "max_output_tokens": 128000,
            "input_cost_per_token": 1e-07,
            "output_cost_per_token": 5e-07,
            "cache_read_input_token_cost": 1e-08,
            "supported_modalities": ["text", "image"],
            "supports_pdf_input": True,
            "supports_function_calling": True,
            "supports_reasoning": True,
        },
        "gemini/gemini-3.8-flash": {
            "litellm_provider": "gemini",
            "mode": "chat",
            "max_input_tokens": 1048576,
            "input_cost_per_token": 7.5e-07,
            "output_cost_per_token": 3.75e-06,
            "output_cost_per_reasoning_token": 3.75e-06,
            "supported_modalities": ["text", "image", "audio", "video"],
            "supports_function_calling": True,
        },
        "gpt-4-retired": {
            "litellm_provider": "openai",
            "mode": "chat",
            "deprecation_date": "2024-01-01",
        },
        "text-embedding-9": {"litellm_provider": "openai", "mode": "embedding"},
        "claude-opus-5-5": {"litellm_provider": "anthropic", "mode": "chat"},
    }
    path = tmp_path / "model_map.json"
    path.write_text(json.dumps(model_map))

    call_command("sync_catalog", "--source", "litellm", "--file", str(path), stdout=StringIO())

    entries = {entry.provider_model_id: entry for entry in ProviderCatalog.objects.all()}
    assert set(entries) == {"gpt-6-luna", "gemini-3.8-flash"}
    luna = entries["gpt-6-luna"]
    assert (luna.provider.slug, luna.suggested_model_id) == ("openai", "openai:gpt-6-luna")
    assert luna.input_modalities == ["image", "file"]
    assert luna.price_input_per_million == Decimal("0.1")
    flash = entries["gemini-3.8-flash"]
    assert (flash.provider.slug, flash.suggested_model_id) == ("google", "google:gemini-3.8-flash")
    assert flash.price_reasoning_per_million == Decimal("3.75")
    assert not flash.supports_reasoning


def test_the_litellm_source_reads_the_bundled_map_without_the_network(
    registry: SeedReport,
) -> None:
    out = StringIO()

    # The pinned map deprecates gemini-2.5-pro on 2026-12-01: the test gives the command its
    # date so that it does not depend on the calendar.
    call_command("sync_catalog", "--source", "litellm", "--today", "2026-06-01", stdout=out)

    assert ProviderCatalog.objects.filter(provider__slug="openai").exists()
    gemini = ProviderCatalog.objects.get(
        provider__slug="google", provider_model_id="gemini-2.5-pro"
    )
    assert gemini.supports_tools and gemini.context_window


def test_the_litellm_source_leaves_out_models_deprecated_before_the_given_date(
    registry: SeedReport,
) -> None:
    call_command("sync_catalog", "--source", "litellm", "--today", "2026-12-02", stdout=StringIO())

    assert ProviderCatalog.objects.filter(provider__slug="openai").exists()
    assert not ProviderCatalog.objects.filter(
        provider__slug="google", provider_model_id="gemini-2.5-pro"
    ).exists()


def test_a_malformed_date_is_a_clear_command_error(registry: SeedReport) -> None:
    with pytest.raises(CommandError, match="not a date"):
        call_command("sync_catalog", "--source", "litellm", "--today", "tomorrow")


def test_an_unreadable_file_is_a_clear_command_error(registry: SeedReport, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")

    with pytest.raises(CommandError, match="Cannot read the openrouter catalog"):
        call_command("sync_catalog", "--source", "openrouter", "--file", str(broken))


def test_nothing_is_promoted_by_syncing_alone(registry: SeedReport) -> None:
    before = Model.objects.count()

    _sync_sample()

    assert Model.objects.count() == before
