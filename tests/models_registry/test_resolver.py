"""resolve(): the right call arguments for every provider kind, and every refusal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pytest_django.fixtures import Settings

from accounts.models import User
from models_registry.calls import ENGINE_LITELLM, ENGINE_OPENAI_COMPATIBLE, CallTarget, Usage
from models_registry.models import Model, ModelProvider, Provider, ProviderKind, Tier
from models_registry.resolver import (
    ModelDisabledError,
    ModelNotInTierError,
    ProviderDisabledError,
    ProviderMissingKeyError,
    UnknownModelError,
    byok_hook_get,
    byok_hook_set,
    resolve,
)
from models_registry.selectors import ModelOption
from models_registry.services import (
    SeedReport,
    model_provider_set_default,
    provider_key_set,
    registry_seed,
)

pytestmark = pytest.mark.django_db


def test_openai_models_go_to_openai_through_the_lean_engine(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    target = resolve(alice, "openai:gpt-5.2")

    assert target.engine == ENGINE_OPENAI_COMPATIBLE
    assert (target.provider_slug, target.provider_kind) == ("openai", "openai")
    assert target.provider_model == "gpt-5.2"
    assert target.api_base == "https://api.openai.com/v1"
    assert target.api_key == "sk-env-openai-1111"
    assert target.litellm_model == "openai/gpt-5.2"
    assert target.capabilities.supports_tools and target.capabilities.accepts("image")
    assert target.pricing.input_per_million == Decimal("1.75")


def test_google_models_go_to_the_gemini_api_through_litellm(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    target = resolve(alice, "google:gemini-3.8-flash")

    assert target.engine == ENGINE_LITELLM
    assert target.litellm_model == "gemini/gemini-3.8-flash"
    assert target.api_base is None  # LiteLLM knows the Gemini API's address
    assert target.api_key == "env-google-2222"
    assert target.capabilities.accepts("video")


def test_models_of_creators_without_a_direct_provider_go_through_openrouter(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    target = resolve(alice, "anthropic:claude-sonnet-5.5")

    assert target.engine == ENGINE_OPENAI_COMPATIBLE
    assert target.provider_slug == "openrouter"
    assert target.provider_model == "anthropic/claude-sonnet-5.5"
    assert target.api_base == "https://openrouter.ai/api/v1"
    assert target.api_key == "sk-or-env-3333"


def test_xai_models_go_to_xai(registry: SeedReport, platform_keys: Settings, alice: User) -> None:
    target = resolve(alice, "xai:grok-4.7")

    assert (target.engine, target.provider_model) == (ENGINE_OPENAI_COMPATIBLE, "grok-4.7")
    assert target.api_base == "https://api.x.ai/v1"
    assert target.api_key == "xai-env-4444"


def test_a_custom_endpoint_needs_no_key_and_keeps_its_extra_params(
    registry: SeedReport, no_platform_keys: Settings, alice: User
) -> None:
    ollama = Provider.objects.create(
        slug="ollama", name="Ollama", kind=ProviderKind.CUSTOM, base_url="http://gpu-box:11434/v1/"
    )
    model = Model.objects.create(
        id="meta:llama-5-8b", creator_id=_creator("meta"), display_name="L"
    )
    ModelProvider.objects.create(
        model=model,
        provider=ollama,
        provider_model_id="llama5:8b",
        is_default=True,
        extra_params={"num_ctx": 8192},
    )
    Tier.objects.get(slug="regular").allowed_models.add(model)

    target = resolve(alice, "meta:llama-5-8b")

    assert target.engine == ENGINE_OPENAI_COMPATIBLE
    assert target.api_base == "http://gpu-box:11434/v1"
    assert target.api_key is None
    assert target.litellm_model == "openai/llama5:8b"
    assert dict(target.extra_params) == {"num_ctx": 8192}


def test_a_stored_key_overrides_the_environment_and_is_never_in_the_repr(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    provider_key_set(provider=Provider.objects.get(slug="openai"), api_key="sk-admin-stored-9999")

    target = resolve(alice, "openai:gpt-6-luna")

    assert target.api_key == "sk-admin-stored-9999"
    assert "9999" not in repr(target)


def test_a_guest_without_a_row_gets_guest_models(
    registry: SeedReport, platform_keys: Settings
) -> None:
    assert resolve(None, "openai:gpt-6-luna").provider_model == "gpt-6-luna"
    with pytest.raises(ModelNotInTierError):
        resolve(None, "openai:gpt-5.2")


def test_an_unknown_model_is_refused(registry: SeedReport, alice: User) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve(alice, "openai:gpt-99")

    assert caught.value.code == "unknown_model"
    assert caught.value.message == "This model does not exist."


def test_a_disabled_model_is_refused(registry: SeedReport, alice: User) -> None:
    Model.objects.filter(id="openai:gpt-5.2").update(enabled=False)

    with pytest.raises(ModelDisabledError, match=r"GPT-5\.2 is currently disabled"):
        resolve(alice, "openai:gpt-5.2")


def test_a_model_outside_the_users_tier_is_refused(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    with pytest.raises(ModelNotInTierError, match="not included in your plan"):
        resolve(alice, "openai:gpt-6.1-sol")


def test_a_model_whose_providers_are_all_disabled_is_refused(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    Provider.objects.filter(slug="openai").update(enabled=False)

    with pytest.raises(ProviderDisabledError) as caught:
        resolve(alice, "openai:gpt-5.2")

    assert caught.value.code == "provider_disabled"


def test_a_model_whose_provider_has_no_key_is_refused(
    registry: SeedReport, no_platform_keys: Settings, alice: User
) -> None:
    with pytest.raises(ProviderMissingKeyError, match="OpenAI has no API key configured"):
        resolve(alice, "openai:gpt-5.2")


def test_a_keyless_default_falls_back_to_another_enabled_provider(
    registry: SeedReport, no_platform_keys: Settings, alice: User
) -> None:
    no_platform_keys.OPENROUTER_API_KEY = "sk-or-env-3333"
    openrouter = Provider.objects.get(slug="openrouter")
    ModelProvider.objects.create(
        model_id="openai:gpt-5.2", provider=openrouter, provider_model_id="openai/gpt-5.2"
    )

    target = resolve(alice, "openai:gpt-5.2")

    assert (target.provider_slug, target.provider_model) == ("openrouter", "openai/gpt-5.2")


def test_the_default_provider_is_preferred_and_can_be_switched(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    route = ModelProvider.objects.create(
        model_id="openai:gpt-5.2",
        provider=Provider.objects.get(slug="openrouter"),
        provider_model_id="openai/gpt-5.2",
    )
    assert resolve(alice, "openai:gpt-5.2").provider_slug == "openai"

    model_provider_set_default(route=route)

    assert resolve(alice, "openai:gpt-5.2").provider_slug == "openrouter"
    assert ModelProvider.objects.filter(model_id="openai:gpt-5.2", is_default=True).count() == 1


def test_a_byok_id_the_user_never_added_is_unknown(registry: SeedReport, alice: User) -> None:
    with pytest.raises(UnknownModelError):
        resolve(alice, "byok:openai:gpt-5.2")


def test_byok_ids_are_delegated_to_the_byok_hook(registry: SeedReport, alice: User) -> None:
    class _Hook:
        def resolve(self, *, user: User | None, model_id: str) -> CallTarget:
            assert user == alice
            return CallTarget(
                model_id=model_id,
                engine=ENGINE_OPENAI_COMPATIBLE,
                provider_slug="byok-openai",
                provider_kind="openai",
                provider_model="gpt-5.2",
                api_base="https://api.openai.com/v1",
                api_key="sk-alice-own",
            )

        def models_for_user(self, *, user: User | None) -> list[ModelOption]:
            return []

    installed = byok_hook_get()  # the byok app's own hook: put it back afterwards
    byok_hook_set(_Hook())
    try:
        assert resolve(alice, "byok:openai:gpt-5.2").api_key == "sk-alice-own"
    finally:
        byok_hook_set(installed)


def test_the_pricing_turns_usage_into_cost(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    pricing = resolve(alice, "openai:gpt-5.2").pricing  # 1.75 in, 14 out, 0.175 cached

    cost = pricing.cost(Usage(input_tokens=1_000_000, output_tokens=100_000, cached_input_tokens=0))
    assert cost == Decimal("1.75") + Decimal("1.4")
    cached = pricing.cost(Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000))
    assert cached == Decimal("0.175")


def test_seeding_does_not_change_resolution(
    registry: SeedReport, platform_keys: Settings, alice: User
) -> None:
    before = resolve(alice, "anthropic:claude-haiku-5.5")

    registry_seed()

    assert resolve(alice, "anthropic:claude-haiku-5.5") == before


def _creator(slug: str) -> int:
    from models_registry.models import Creator

    return Creator.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0].pk
