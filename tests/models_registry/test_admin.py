"""The control panel: lists, filters, keys never shown, validation, actions."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from models_registry.models import Model, ModelProvider, Provider, ProviderCatalog, Tier
from models_registry.resolver import provider_api_key
from models_registry.services import SeedReport
from tests.fake_provider import FakeProvider
from tests.secrets_support import assert_no_secret, logged_text

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-typed-this-7f3e9a21"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/models_registry/creator/",
        "/admin/models_registry/provider/?kind__exact=openai",
        "/admin/models_registry/model/?q=claude&enabled__exact=1",
        "/admin/models_registry/model/?supports_reasoning__exact=1&routes__provider__id__exact=1",
        "/admin/models_registry/modelprovider/?q=gpt",
        "/admin/models_registry/providercatalog/",
        "/admin/models_registry/tier/",
        "/admin/models_registry/model/openai:gpt-5.2/change/",
        "/admin/models_registry/provider/add/",
    ],
)
def test_the_admin_pages_load(registry: SeedReport, admin_client: Client, path: str) -> None:
    assert admin_client.get(path).status_code == 200


def test_a_tier_page_offers_model_selection(registry: SeedReport, admin_client: Client) -> None:
    tier = Tier.objects.get(slug="regular")

    page = admin_client.get(f"/admin/models_registry/tier/{tier.pk}/change/")

    assert page.status_code == 200
    assert b'name="allowed_models"' in page.content


def test_bob_who_is_not_staff_cannot_open_the_admin(
    registry: SeedReport, bob_client: Client
) -> None:
    assert bob_client.get("/admin/models_registry/provider/").status_code == 302


def _provider_form(**overrides: str) -> dict[str, str]:
    data = {"slug": "vllm", "name": "vLLM box", "kind": "custom", "base_url": "", "enabled": "on"}
    data.update(overrides)
    return data


def test_an_admin_adds_a_custom_provider_with_a_key_that_is_never_shown_again(
    registry: SeedReport, admin_client: Client
) -> None:
    response = admin_client.post(
        "/admin/models_registry/provider/add/",
        _provider_form(base_url="http://10.1.2.3:8000/v1", api_key=SECRET),
    )
    assert response.status_code == 302

    provider = Provider.objects.get(slug="vllm")
    assert SECRET not in provider.api_key_encrypted
    assert provider_api_key(provider=provider) == SECRET
    assert provider.admin_edited
    page = admin_client.get(f"/admin/models_registry/provider/{provider.pk}/change/")
    assert SECRET.encode() not in page.content
    assert b"stored ending in \xe2\x80\xa69a21" in page.content
    listing = admin_client.get("/admin/models_registry/provider/")
    assert SECRET.encode() not in listing.content


def test_a_custom_provider_without_a_base_url_is_explained(
    registry: SeedReport, admin_client: Client
) -> None:
    response = admin_client.post("/admin/models_registry/provider/add/", _provider_form())

    assert response.status_code == 200
    assert b"An OpenAI-compatible endpoint needs its base URL" in response.content
    assert not Provider.objects.filter(slug="vllm").exists()


def test_saving_without_a_new_key_keeps_the_stored_one_and_forgetting_drops_it(
    registry: SeedReport, admin_client: Client
) -> None:
    admin_client.post(
        "/admin/models_registry/provider/add/",
        _provider_form(base_url="http://10.1.2.3:8000/v1", api_key=SECRET),
    )
    provider = Provider.objects.get(slug="vllm")
    url = f"/admin/models_registry/provider/{provider.pk}/change/"

    admin_client.post(url, _provider_form(base_url="http://10.1.2.3:8000/v1", name="Renamed"))
    provider.refresh_from_db()
    assert provider_api_key(provider=provider) == SECRET

    admin_client.post(url, _provider_form(base_url="http://10.1.2.3:8000/v1", clear_api_key="on"))
    provider.refresh_from_db()
    assert provider.api_key_encrypted == "" and provider.api_key_last_four == ""


def test_testing_a_provider_connection_reports_success_and_failure(
    registry: SeedReport, admin_client: Client, fake_llm: FakeProvider
) -> None:
    fake_llm.require_api_key(SECRET)
    admin_client.post(
        "/admin/models_registry/provider/add/",
        _provider_form(slug="fake", name="Fake box", base_url=fake_llm.base_url, api_key=SECRET),
    )
    admin_client.post(
        "/admin/models_registry/provider/add/",
        _provider_form(
            slug="fake-wrong",
            name="Wrong key box",
            base_url=fake_llm.base_url,
            api_key="sk-wrong-key-0000",
        ),
    )
    ids = Provider.objects.filter(slug__startswith="fake").values_list("pk", flat=True)

    response = admin_client.post(
        "/admin/models_registry/provider/",
        {"action": "test_connection", "_selected_action": [str(pk) for pk in ids]},
        follow=True,
    )

    text = response.content.decode()
    assert "Fake box: Connected: the provider lists 2 models." in text
    assert "Wrong key box: The provider refused the API key" in text
    assert "sk-wrong-key-0000" not in text
    assert [request.path for request in fake_llm.requests] == ["/v1/models", "/v1/models"]


@pytest.mark.parametrize("status", [401, 500])
def test_testing_a_connection_never_shows_the_key_a_gateway_echoes(
    registry: SeedReport,
    admin_client: Client,
    fake_llm: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    admin_client.post(
        "/admin/models_registry/provider/add/",
        _provider_form(slug="gateway", name="Gateway", base_url=fake_llm.base_url, api_key=SECRET),
    )
    fake_llm.echo_headers_in_errors(status)

    response = admin_client.post(
        "/admin/models_registry/provider/",
        {
            "action": "test_connection",
            "_selected_action": [Provider.objects.get(slug="gateway").pk],
        },
        follow=True,
    )

    assert fake_llm.requests[0].api_key == SECRET  # sent, and echoed back
    text = response.content.decode()
    assert "Gateway: The provider" in text and "Bearer [redacted]" in text
    assert_no_secret(text, [SECRET], where="the admin's page")
    assert_no_secret(logged_text(caplog), [SECRET], where="the logs")


def test_a_tier_cannot_include_a_model_without_an_enabled_provider(
    registry: SeedReport, admin_client: Client
) -> None:
    ModelProvider.objects.filter(model_id="xai:grok-4.7").update(enabled=False)
    tier = Tier.objects.get(slug="guest")

    response = admin_client.post(
        f"/admin/models_registry/tier/{tier.pk}/change/",
        {
            "slug": "guest",
            "name": "Guest",
            "allowed_models": ["openai:gpt-6-luna", "xai:grok-4.7"],
            "bucket_capacity": "10",
            "refill_amount": "10",
            "refill_interval_seconds": "86400",
        },
    )

    assert response.status_code == 200
    assert (
        b"A tier cannot include a model without an enabled provider: xai:grok-4.7"
        in response.content
    )
    assert not tier.allowed_models.filter(id="xai:grok-4.7").exists()


def _model_form(model: Model, routes: list[dict[str, str]]) -> dict[str, str]:
    data = {
        "creator": str(model.creator_id),
        "display_name": model.display_name,
        "description": "",
        "supports_tools": "on",
        "enabled": "on",
        "routes-TOTAL_FORMS": str(len(routes)),
        "routes-INITIAL_FORMS": str(len(routes)),
    }
    for index, route in enumerate(routes):
        data.update({f"routes-{index}-{key}": value for key, value in route.items()})
    return data


def test_a_model_needs_exactly_one_enabled_default_provider(
    registry: SeedReport, admin_client: Client
) -> None:
    model = Model.objects.get(id="openai:gpt-5.2")
    route = model.routes.get()
    fields = {
        "id": str(route.pk),
        "model": model.pk,
        "provider": str(route.provider_id),
        "provider_model_id": "gpt-5.2",
        "enabled": "on",
        "extra_params": "{}",
    }

    response = admin_client.post(
        f"/admin/models_registry/model/{model.pk}/change/", _model_form(model, [fields])
    )

    assert response.status_code == 200
    assert b"Mark exactly one enabled provider as the default" in response.content


def test_actions_disable_and_enable_models(registry: SeedReport, admin_client: Client) -> None:
    url = "/admin/models_registry/model/"
    admin_client.post(url, {"action": "disable", "_selected_action": ["openai:gpt-5.2"]})
    assert not Model.objects.get(id="openai:gpt-5.2").enabled

    admin_client.post(url, {"action": "enable", "_selected_action": ["openai:gpt-5.2"]})
    assert Model.objects.get(id="openai:gpt-5.2").enabled


def test_the_set_default_action_moves_the_default(
    registry: SeedReport, admin_client: Client
) -> None:
    route = ModelProvider.objects.create(
        model_id="openai:gpt-5.2",
        provider=Provider.objects.get(slug="openrouter"),
        provider_model_id="openai/gpt-5.2",
    )

    admin_client.post(
        "/admin/models_registry/modelprovider/",
        {"action": "set_default", "_selected_action": [str(route.pk)]},
    )

    defaults = ModelProvider.objects.filter(model_id="openai:gpt-5.2", is_default=True)
    assert list(defaults.values_list("provider__slug", flat=True)) == ["openrouter"]


def test_the_promote_action_turns_catalog_entries_into_models(
    registry: SeedReport, admin_client: Client, settings: Settings
) -> None:
    from django.core.management import call_command

    sample = "tests/models_registry/openrouter_models_sample.json"
    call_command("sync_catalog", "--source", "openrouter", "--file", sample, stdout=None)
    entry = ProviderCatalog.objects.get(provider_model_id="mistralai/mistral-small-4")

    response = admin_client.post(
        "/admin/models_registry/providercatalog/",
        {"action": "promote", "_selected_action": [str(entry.pk)]},
        follow=True,
    )

    assert b"Promoted: mistralai:mistral-small-4" in response.content
    assert Model.objects.filter(id="mistralai:mistral-small-4").exists()
