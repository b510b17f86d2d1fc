"""Overlong names, URLs, keys and model ids on the Keys & endpoints page: 400, nothing saved."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from byok.models import UserByokModel, UserCustomProvider, UserProviderKey
from models_registry.models import Provider
from tests.fake_provider import FakeProvider

HTMX = {"HX-Request": "true"}
LONG = "a" * 100_000


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/settings/keys/provider", {"provider": "openai", "api_key": LONG}),
        ("/settings/keys/endpoints", {"name": LONG, "base_url": "http://127.0.0.1:1/v1"}),
        ("/settings/keys/endpoints", {"name": "Lab", "base_url": f"http://{LONG}.test/v1"}),
        (
            "/settings/keys/endpoints",
            {"name": "Lab", "base_url": "http://x.test/v1", "api_key": LONG},
        ),
        ("/settings/keys/provider/openai/models", {"provider_model_id": LONG}),
        ("/settings/keys/provider/openai/models", {"provider_model_id": "m", "display_name": LONG}),
    ],
    ids=["key", "endpoint-name", "endpoint-url", "endpoint-key", "model-id", "model-name"],
)
def test_an_overlong_value_is_refused_and_changes_nothing(
    alice_client: Client,
    platform_openai: Provider,
    alice_openai_key: UserProviderKey,
    fake_llm: FakeProvider,
    url: str,
    data: dict[str, Any],
) -> None:
    key_before = UserProviderKey.objects.values_list("api_key_encrypted", flat=True).get()

    response = alice_client.post(url, data, headers=HTMX)

    assert response.status_code == 400
    assert "at most" in response.content.decode()
    assert UserProviderKey.objects.values_list("api_key_encrypted", flat=True).get() == key_before
    assert not UserCustomProvider.objects.exists()
    assert not UserByokModel.objects.exists()
    assert fake_llm.requests == []
