"""BYOK fixtures: the personas' keys, the fake provider as their endpoint, and a log watch.

Every test here runs with logging captured at DEBUG, and fails if any of the personas' secrets
(`tests/byok/helpers.py`) shows up in a log line: keys must never be logged, whatever the path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from accounts.models import User
from byok.models import UserByokModel, UserCustomProvider, UserProviderKey
from byok.services import byok_endpoint_create, byok_key_set, byok_model_add
from models_registry.models import Provider
from tests.byok.helpers import ALICE_ENDPOINT_KEY, ALICE_OPENAI_KEY, SECRETS


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in SECRETS:
            assert secret not in line, f"a key was logged by {record.name}: {line[:200]}"


@pytest.fixture
def private_networks_allowed(settings: Settings) -> None:
    """The fake provider listens on 127.0.0.1, which custom endpoints may reach only so."""
    settings.BYOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def platform_openai(db: None, fake_llm: Any) -> Provider:
    """The platform's OpenAI provider, pointed by the admin at the fake provider."""
    return Provider.objects.create(
        slug="openai", name="OpenAI", kind="openai", base_url=fake_llm.base_url
    )


@pytest.fixture
def alice_openai_key(alice: User) -> UserProviderKey:
    return byok_key_set(user=alice, provider="openai", api_key=ALICE_OPENAI_KEY)


@pytest.fixture
def alice_openai_model(alice: User, alice_openai_key: UserProviderKey) -> UserByokModel:
    return byok_model_add(
        user=alice, key=alice_openai_key, provider_model_id="fake-model", display_name="My GPT"
    )


@pytest.fixture
def alice_endpoint(
    alice: User, fake_llm: Any, private_networks_allowed: None
) -> UserCustomProvider:
    return byok_endpoint_create(
        user=alice, name="Home lab", slug="homelab", base_url=fake_llm.base_url,
        api_key=ALICE_ENDPOINT_KEY,
    )  # fmt: skip


@pytest.fixture
def alice_endpoint_model(alice: User, alice_endpoint: UserCustomProvider) -> UserByokModel:
    return byok_model_add(
        user=alice, endpoint=alice_endpoint, provider_model_id="fake-model-mini",
        display_name="Lab mini",
    )  # fmt: skip
