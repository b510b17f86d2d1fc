"""The registry cache: resolution per tier and model, cleared by writes in this process and
expired for writes made elsewhere."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from accounts.models import User
from models_registry.models import Model, Tier
from models_registry.resolver import ModelDisabledError, ModelNotInTierError, resolve
from models_registry.selectors import tier_for_user
from models_registry.services import SeedReport, model_set_enabled

pytestmark = pytest.mark.django_db

MODEL = "openai:gpt-5.2"


def test_a_second_resolution_reads_nothing(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    resolve(alice, MODEL)
    with CaptureQueriesContext(connection) as captured:
        again = resolve(alice, MODEL)
        tier_for_user(user=alice)
    assert again.provider_slug == "openai"
    assert captured.captured_queries == []


def test_a_registry_service_applies_at_once(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    resolve(alice, MODEL)
    model_set_enabled(model_ids=[MODEL], enabled=False)
    with pytest.raises(ModelDisabledError):
        resolve(alice, MODEL)


def test_a_saved_tier_applies_at_once(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    resolve(alice, MODEL)
    tier = Tier.objects.get(slug=Tier.REGULAR)
    tier.includes_all_models = False
    tier.save()
    tier.allowed_models.set(Model.objects.exclude(id=MODEL))
    with pytest.raises(ModelNotInTierError):
        resolve(alice, MODEL)


def test_a_write_made_elsewhere_applies_when_the_entry_expires(
    registry: SeedReport, platform_keys: Settings, alice: User, settings: Settings
) -> None:
    settings.REGISTRY_CACHE_SECONDS = 0.3
    resolve(alice, MODEL)
    # Another process's write: no signal reaches this one.
    Model.objects.filter(id=MODEL).update(enabled=False)
    assert resolve(alice, MODEL).model_id == MODEL
    time.sleep(0.35)
    with pytest.raises(ModelDisabledError):
        resolve(alice, MODEL)


def test_the_cache_is_per_tier(registry: SeedReport, platform_keys: Settings, alice: User) -> None:
    resolve(alice, MODEL)
    limited = Tier.objects.create(slug="limited", name="Limited", includes_all_models=False)
    alice.tier = limited
    alice.save()
    with pytest.raises(ModelNotInTierError):
        resolve(alice, MODEL)


def test_zero_seconds_turns_it_off(
    registry: SeedReport, platform_keys: Settings, alice: User, settings: Settings
) -> None:
    settings.REGISTRY_CACHE_SECONDS = 0
    resolve(alice, MODEL)
    with CaptureQueriesContext(connection) as captured:
        resolve(alice, MODEL)
    assert captured.captured_queries
