"""The Keys & endpoints page: add, replace, test and delete keys; endpoints and their models."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from byok.models import UserByokModel, UserCustomProvider, UserProviderKey
from byok.services import byok_endpoint_create, byok_key_set, byok_model_add
from models_registry.models import Creator, Model, ModelProvider, Provider
from tests.byok.helpers import (
    ALICE_ENDPOINT_KEY,
    ALICE_OPENAI_KEY,
    BOB_OPENAI_KEY,
    assert_no_secret,
)
from tests.helpers import client_for_guest

HTMX = {"HX-Request": "true"}


def test_the_page_lists_every_platform_provider_and_the_add_endpoint_form(
    alice_client: Client,
) -> None:
    response = alice_client.get("/settings/keys/")

    assert response.status_code == 200
    body = response.content.decode()
    for label in ("OpenAI", "Google (Gemini API)", "OpenRouter", "xAI"):
        assert label in body
    assert 'action="/settings/keys/endpoints"' in body
    assert "<html" in body


def test_an_htmx_request_gets_only_the_panel(alice_client: Client) -> None:
    body = alice_client.get("/settings/keys/", headers=HTMX).content.decode()

    assert body.lstrip().startswith('<div id="byok-panel"')
    assert "<html" not in body


def test_alice_adds_her_openai_key_and_sees_only_its_last_four(alice_client: Client) -> None:
    response = alice_client.post(
        "/settings/keys/provider", {"provider": "openai", "api_key": f"  {ALICE_OPENAI_KEY} "}
    )

    assert response.status_code == 302
    key = UserProviderKey.objects.get()
    assert (key.provider, key.api_key_last_four) == ("openai", ALICE_OPENAI_KEY[-4:])
    page = alice_client.get("/settings/keys/")
    assert "Your OpenAI key is saved." in page.content.decode()
    assert_no_secret(page)


def test_replacing_a_key_keeps_its_models(
    alice_client: Client, alice_openai_model: UserByokModel
) -> None:
    response = alice_client.post(
        "/settings/keys/provider",
        {"provider": "openai", "api_key": "sk-alice-replacement-77777777"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert "…7777" in response.content.decode()
    assert UserProviderKey.objects.get().api_key_last_four == "7777"
    assert UserByokModel.objects.filter(pk=alice_openai_model.pk).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"provider": "openai", "api_key": ""}, "Enter the API key."),
        ({"provider": "openai", "api_key": "   "}, "Enter the API key."),
        ({"provider": "openai", "api_key": "sk two words"}, "contains spaces"),
        ({"provider": "custom", "api_key": "sk-12345678"}, "Select a valid choice."),
        ({"provider": "anthropic", "api_key": "sk-12345678"}, "Select a valid choice."),
    ],
)
def test_a_bad_key_is_refused_and_changes_nothing(
    alice_client: Client, alice_openai_key: UserProviderKey, data: dict[str, str], message: str
) -> None:
    before = alice_openai_key.api_key_encrypted

    response = alice_client.post("/settings/keys/provider", data, headers=HTMX)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert UserProviderKey.objects.get().api_key_encrypted == before


def test_deleting_a_key_deletes_the_models_that_use_it(
    alice_client: Client,
    alice_openai_model: UserByokModel,
    alice_endpoint_model: UserByokModel,
) -> None:
    response = alice_client.post("/settings/keys/provider/openai/delete", headers=HTMX)

    assert response.status_code == 200
    assert "Your OpenAI key and its models are deleted." in response.content.decode()
    assert not UserProviderKey.objects.exists()
    assert list(UserByokModel.objects.all()) == [alice_endpoint_model]


def test_deleting_an_endpoint_deletes_its_models(
    alice_client: Client, alice_openai_model: UserByokModel, alice_endpoint_model: UserByokModel
) -> None:
    response = alice_client.post("/settings/keys/endpoints/homelab/delete")

    assert response.status_code == 302
    assert not UserCustomProvider.objects.exists()
    assert list(UserByokModel.objects.all()) == [alice_openai_model]


def test_testing_a_key_reports_success_in_plain_words(
    alice_client: Client,
    platform_openai: Provider,
    alice_openai_key: UserProviderKey,
    fake_llm: Any,
) -> None:
    fake_llm.require_api_key(ALICE_OPENAI_KEY)

    response = alice_client.post("/settings/keys/provider/openai/test", headers=HTMX)

    assert "OpenAI: Connected: the provider lists 2 models." in response.content.decode()
    assert fake_llm.requests[0].authorization == f"Bearer {ALICE_OPENAI_KEY}"
    assert_no_secret(response)


def test_testing_a_refused_key_reports_the_providers_words(
    alice_client: Client,
    platform_openai: Provider,
    alice_openai_key: UserProviderKey,
    fake_llm: Any,
) -> None:
    fake_llm.require_api_key("sk-the-only-key-the-provider-takes")

    response = alice_client.post("/settings/keys/provider/openai/test", headers=HTMX)

    body = response.content.decode()
    assert "OpenAI: The provider refused the API key: Incorrect API key provided" in body
    assert 'class="flash flash-error"' in body
    assert_no_secret(response)


def test_alice_adds_an_endpoint_lists_its_models_adds_one_and_removes_it(
    alice_client: Client, fake_llm: Any, private_networks_allowed: None
) -> None:
    fake_llm.require_api_key(ALICE_ENDPOINT_KEY)
    fake_llm.set_models(["llama3.1:8b", "qwen3:32b"])

    created = alice_client.post(
        "/settings/keys/endpoints",
        {"name": "Home lab", "base_url": fake_llm.base_url, "api_key": ALICE_ENDPOINT_KEY},
        headers=HTMX,
    )
    assert "Home lab is added" in created.content.decode()
    endpoint = UserCustomProvider.objects.get()
    assert (endpoint.slug, endpoint.base_url) == ("home-lab", fake_llm.base_url)

    listed = alice_client.get("/settings/keys/endpoints/home-lab/models", headers=HTMX)
    body = listed.content.decode()
    assert "Models of Home lab" in body
    assert "<code>llama3.1:8b</code>" in body and "<code>qwen3:32b</code>" in body
    assert fake_llm.requests[-1].path == "/v1/models"
    assert fake_llm.requests[-1].authorization == f"Bearer {ALICE_ENDPOINT_KEY}"

    added = alice_client.post(
        "/settings/keys/endpoints/home-lab/models",
        {"provider_model_id": "llama3.1:8b", "supports_tools": "on", "input_modalities": "image"},
        headers=HTMX,
    )
    assert "llama3.1:8b is added to your models." in added.content.decode()
    model = UserByokModel.objects.get()
    assert model.model_id == "byok:custom:home-lab:llama3.1:8b"
    assert (model.supports_tools, model.input_modalities) == (True, ["image"])

    removed = alice_client.post(f"/settings/keys/models/{model.pk}/delete", headers=HTMX)
    assert "llama3.1:8b is removed from your models." in removed.content.decode()
    assert not UserByokModel.objects.exists()
    for response in (created, listed, added, removed):
        assert_no_secret(response)


def test_models_added_from_a_platform_key_take_the_registrys_capabilities(
    alice_client: Client,
    platform_openai: Provider,
    alice_openai_key: UserProviderKey,
    fake_llm: Any,
) -> None:
    creator = Creator.objects.create(slug="openai", name="OpenAI")
    known = Model.objects.create(
        id="openai:fake-model", creator=creator, display_name="Fake GPT",
        input_modalities=["image"], supports_tools=True, context_window=128_000,
    )  # fmt: skip
    ModelProvider.objects.create(
        model=known, provider=platform_openai, provider_model_id="fake-model"
    )

    listed = alice_client.get("/settings/keys/provider/openai/models", headers=HTMX)
    body = listed.content.decode()
    assert "Models of your OpenAI key" in body
    assert 'name="context_window" value="128000"' in body

    alice_client.post(
        "/settings/keys/provider/openai/models",
        {"provider_model_id": "fake-model", "supports_tools": "on", "input_modalities": "image",
         "context_window": "128000"},
    )  # fmt: skip
    model = UserByokModel.objects.get()
    assert (model.key, model.context_window, model.supports_tools) == (
        alice_openai_key,
        128_000,
        True,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"provider_model_id": ""}, "Enter the model&#x27;s id."),
        ({"provider_model_id": "has spaces in it"}, "A model id is the provider"),
        ({"provider_model_id": "ok", "context_window": "-5"}, "greater than or equal to 1"),
        ({"provider_model_id": "ok", "input_modalities": "smell"}, "Select a valid choice."),
        (
            {"provider_model_id": "fake-model-mini"},
            "fake-model-mini is already one of your models.",
        ),
    ],
)
def test_a_bad_model_is_refused_and_changes_nothing(
    alice_client: Client, alice_endpoint_model: UserByokModel, data: dict[str, str], message: str
) -> None:
    response = alice_client.post("/settings/keys/endpoints/homelab/models", data, headers=HTMX)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(UserByokModel.objects.all()) == [alice_endpoint_model]


def test_a_duplicate_short_name_is_refused(
    alice_client: Client, alice_endpoint: UserCustomProvider, fake_llm: Any
) -> None:
    response = alice_client.post(
        "/settings/keys/endpoints",
        {"name": "Another", "slug": "homelab", "base_url": fake_llm.base_url},
        headers=HTMX,
    )

    assert response.status_code == 400
    assert "You already have an endpoint named “homelab”" in response.content.decode()
    assert UserCustomProvider.objects.count() == 1


def test_an_endpoint_without_a_name_is_refused(alice_client: Client) -> None:
    response = alice_client.post(
        "/settings/keys/endpoints", {"name": "", "base_url": "https://llm.example.com/v1"}
    )

    assert response.status_code == 400
    assert "Give the endpoint a name." in response.content.decode()
    assert not UserCustomProvider.objects.exists()


def test_testing_an_endpoint_that_is_down_says_so(
    alice: User, alice_client: Client, private_networks_allowed: None
) -> None:
    byok_endpoint_create(user=alice, name="Down", base_url="http://127.0.0.1:9/v1")

    response = alice_client.post("/settings/keys/endpoints/down/test", headers=HTMX)

    assert "Down: The provider cannot be reached" in response.content.decode()


def test_testing_an_endpoint_that_answers_lists_its_model_count(
    alice_client: Client, alice_endpoint: UserCustomProvider
) -> None:
    response = alice_client.post("/settings/keys/endpoints/homelab/test", headers=HTMX)

    assert "Connected: Home lab lists 2 models." in response.content.decode()


@pytest.fixture
def bobs_things(bob: User, fake_llm: Any, private_networks_allowed: None) -> UserByokModel:
    key = byok_key_set(user=bob, provider="xai", api_key=BOB_OPENAI_KEY)
    byok_model_add(user=bob, key=key, provider_model_id="grok-9")
    endpoint = byok_endpoint_create(user=bob, name="Bob lab", base_url=fake_llm.base_url)
    return byok_model_add(user=bob, endpoint=endpoint, provider_model_id="fake-model")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/settings/keys/provider/xai/delete"),
        ("post", "/settings/keys/provider/xai/test"),
        ("get", "/settings/keys/provider/xai/models"),
        ("post", "/settings/keys/provider/xai/models"),
        ("post", "/settings/keys/provider/nonsense/delete"),
        ("post", "/settings/keys/endpoints/bob-lab/delete"),
        ("post", "/settings/keys/endpoints/bob-lab/test"),
        ("get", "/settings/keys/endpoints/bob-lab/models"),
        ("post", "/settings/keys/endpoints/bob-lab/models"),
        ("post", "/settings/keys/models/{bobs_model}/delete"),
    ],
)
def test_bobs_keys_endpoints_and_models_are_404_for_alice(
    alice_client: Client, bobs_things: UserByokModel, method: str, path: str, fake_llm: Any
) -> None:
    url = path.format(bobs_model=bobs_things.pk)

    response = getattr(alice_client, method)(url, {"provider_model_id": "stolen"})

    assert response.status_code == 404
    assert UserProviderKey.objects.filter(user=bobs_things.user).count() == 1
    assert UserCustomProvider.objects.filter(user=bobs_things.user).count() == 1
    assert UserByokModel.objects.filter(user=bobs_things.user).count() == 2
    assert fake_llm.requests == []


def test_a_new_guest_can_add_a_key_which_creates_their_row(client: Client, db: None) -> None:
    response = client.post(
        "/settings/keys/provider", {"provider": "openrouter", "api_key": "sk-or-12345678"}
    )

    assert response.status_code == 302
    key = UserProviderKey.objects.get()
    assert key.user.is_guest
    page = client_for_guest(key.user).get("/settings/keys/")
    assert "…5678" in page.content.decode()
