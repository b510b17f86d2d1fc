"""Fixtures for the model registry: a seeded registry, platform keys, the fake provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from pytest_django.fixtures import Settings as SettingsWrapper

from models_registry.llm import llm_close
from models_registry.models import Creator, Model, ModelProvider, Provider, ProviderKind, Tier
from models_registry.services import SeedReport, registry_seed
from tests.fake_provider import FakeProvider
from tests.fixtures_fake_provider import fake_llm, fake_provider_server
from tests.models_registry.helpers import FAKE_KEY

__all__ = ["fake_llm", "fake_provider_server"]


@pytest.fixture
def platform_keys(settings: SettingsWrapper) -> SettingsWrapper:
    """Every platform provider has a key in the environment."""
    settings.OPENAI_API_KEY = "sk-env-openai-1111"
    settings.GOOGLE_API_KEY = "env-google-2222"
    settings.OPENROUTER_API_KEY = "sk-or-env-3333"
    settings.XAI_API_KEY = "xai-env-4444"
    return settings


@pytest.fixture
def no_platform_keys(settings: SettingsWrapper) -> SettingsWrapper:
    for name in ("OPENAI_API_KEY", "GOOGLE_API_KEY", "OPENROUTER_API_KEY", "XAI_API_KEY"):
        setattr(settings, name, "")
    return settings


@pytest.fixture
def registry(db: None, settings: SettingsWrapper) -> SeedReport:
    """The registry as `manage.py seed_registry` leaves it (without a local Ollama)."""
    settings.OLLAMA_BASE_URL = ""
    return registry_seed()


@pytest.fixture
def fake_model(db: None, fake_llm: FakeProvider) -> Model:
    """A model served by a custom OpenAI-compatible provider: the fake server, keyed."""
    creator = Creator.objects.create(slug="fakelab", name="Fake Lab")
    provider = Provider.objects.create(
        slug="fake", name="Fake provider", kind=ProviderKind.CUSTOM, base_url=fake_llm.base_url
    )
    from models_registry.services import provider_key_set

    provider_key_set(provider=provider, api_key=FAKE_KEY)
    model = Model.objects.create(
        id="fakelab:fake-model",
        creator=creator,
        display_name="Fake Model",
        supports_tools=True,
        supports_reasoning=True,
        context_window=32000,
    )
    ModelProvider.objects.create(
        model=model,
        provider=provider,
        provider_model_id="fake-model",
        is_default=True,
        price_input_per_million=Decimal("1.000000"),
        price_output_per_million=Decimal("4.000000"),
    )
    for slug, name in ((Tier.GUEST, "Guest"), (Tier.REGULAR, "Regular")):
        tier, _ = Tier.objects.get_or_create(slug=slug, defaults={"name": name})
        tier.allowed_models.add(model)
    fake_llm.require_api_key(FAKE_KEY)
    return model


@pytest_asyncio.fixture
async def llm_sessions() -> AsyncIterator[None]:
    """Close the HTTP session llm.py opened on this test's event loop, and the database
    connection sync_to_async opened in its worker thread (the test database is dropped later).
    """
    yield
    await llm_close()
    await sync_to_async(connections.close_all)()
