"""One call path: a model id and a user become a `CallTarget`, or a typed, plainly worded error.

Platform models are checked against the model row, the user's tier and the routes (providers)
that serve the model, preferring the default route. BYOK ids (`byok:...`) belong to the
`byok` app, which plugs in through `byok_hook_set`; until it does they are unknown models.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings

from models_registry.cache import registry_cached
from models_registry.calls import KIND_ENGINE, CallTarget, Capabilities, Pricing
from models_registry.models import BYOK_PREFIX, Model, ModelProvider, Provider, ProviderKind
from vero.errors import ErrorKind, VeroError
from vero.lib.secrets import SecretDecryptError, secret_decrypt

if TYPE_CHECKING:
    from accounts.models import User
    from models_registry.selectors import ModelOption

logger = logging.getLogger(__name__)


class ResolutionError(VeroError):
    """A model cannot be used for this user; nothing was written.

    Every kind of it is INVALID (400): the user picked a model they cannot use now, and picks
    another; the page has always answered these with a 400.
    """

    code = "resolution_error"
    kind = ErrorKind.INVALID
    default_message = "This model cannot be used."

    def __init__(self, message: str | None = None, *, model_id: str) -> None:
        super().__init__(message)
        self.model_id = model_id


class UnknownModelError(ResolutionError):
    code = "unknown_model"
    default_message = "This model does not exist."


class ModelDisabledError(ResolutionError):
    code = "model_disabled"
    default_message = "This model is currently disabled."


class ModelNotInTierError(ResolutionError):
    code = "model_not_in_tier"
    default_message = "This model is not included in your plan."


class ProviderDisabledError(ResolutionError):
    code = "provider_disabled"
    default_message = "No provider currently serves this model."


class ProviderMissingKeyError(ResolutionError):
    code = "provider_no_key"
    default_message = "This model's provider has no API key configured."


# -- providers ----------------------------------------------------------------------------------

DEFAULT_BASE_URLS: Mapping[str, str] = {
    ProviderKind.OPENAI: "https://api.openai.com/v1",
    ProviderKind.OPENROUTER: "https://openrouter.ai/api/v1",
    ProviderKind.XAI: "https://api.x.ai/v1",
}  # Google: LiteLLM knows the Gemini API's address; an admin may still set one.
# The settings (read from the environment) that hold each platform provider's key.
ENV_KEY_SETTINGS: Mapping[str, str] = {
    ProviderKind.OPENAI: "OPENAI_API_KEY",
    ProviderKind.GOOGLE: "GOOGLE_API_KEY",
    ProviderKind.OPENROUTER: "OPENROUTER_API_KEY",
    ProviderKind.XAI: "XAI_API_KEY",
}


@dataclass(frozen=True)
class ProviderEndpoint:
    """Where a provider answers and with which key (None: none configured)."""

    kind: str
    api_base: str | None
    api_key: str | None = None

    def __repr__(self) -> str:  # never show the key, not even in a traceback
        return f"ProviderEndpoint(kind={self.kind!r}, api_base={self.api_base!r})"


def provider_api_key(*, provider: Provider) -> str | None:
    """Return the provider's key: the admin-stored one, else the environment's, else None."""
    if provider.api_key_encrypted:
        try:
            return secret_decrypt(token=provider.api_key_encrypted)
        except SecretDecryptError:
            logger.warning("provider %s: the stored key cannot be decrypted", provider.slug)
            return None
    setting = ENV_KEY_SETTINGS.get(provider.kind)
    value = getattr(settings, setting, "") if setting else ""
    return value or None


def provider_key_source(*, provider: Provider) -> str:
    """Describe where the provider's key comes from, for the admin (never the key itself)."""
    if provider.api_key_encrypted:
        ending = f" ending in …{provider.api_key_last_four}" if provider.api_key_last_four else ""
        return f"stored{ending}"
    setting = ENV_KEY_SETTINGS.get(provider.kind)
    if setting and getattr(settings, setting, ""):
        return f"environment ({setting})"
    return "none needed" if provider.kind == ProviderKind.CUSTOM else "missing"


def provider_needs_key(*, provider: Provider) -> bool:
    # Local OpenAI-compatible servers (Ollama, vLLM) usually take no key.
    return provider.kind != ProviderKind.CUSTOM


def provider_endpoint(*, provider: Provider) -> ProviderEndpoint:
    """Return where `provider` answers and its key."""
    api_base = provider.base_url.rstrip("/") or DEFAULT_BASE_URLS.get(provider.kind)
    return ProviderEndpoint(
        kind=provider.kind, api_base=api_base, api_key=provider_api_key(provider=provider)
    )


# -- BYOK ---------------------------------------------------------------------------------------


class ByokHook(Protocol):
    """What the `byok` app provides: its models for a user, and resolution of their ids."""

    def resolve(self, *, user: User | None, model_id: str) -> CallTarget: ...

    def models_for_user(self, *, user: User | None) -> list[ModelOption]: ...


_byok_hook: ByokHook | None = None


def byok_hook_set(hook: ByokHook | None) -> None:
    """Install the BYOK hook (the `byok` app calls this from its AppConfig.ready)."""
    global _byok_hook
    _byok_hook = hook


def byok_hook_get() -> ByokHook | None:
    return _byok_hook


# -- resolution ---------------------------------------------------------------------------------


def _target(*, model: Model, route: ModelProvider, endpoint: ProviderEndpoint) -> CallTarget:
    return CallTarget(
        model_id=model.id,
        engine=KIND_ENGINE[route.provider.kind],
        provider_slug=route.provider.slug,
        provider_kind=route.provider.kind,
        provider_model=route.provider_model_id,
        api_base=endpoint.api_base,
        api_key=endpoint.api_key,
        extra_params=dict(route.extra_params or {}),
        capabilities=Capabilities.of(model),
        pricing=route_pricing(route=route),
    )


def route_pricing(*, route: ModelProvider) -> Pricing:
    return Pricing(
        input_per_million=route.price_input_per_million,
        output_per_million=route.price_output_per_million,
        reasoning_per_million=route.price_reasoning_per_million,
        cached_input_per_million=route.price_cached_input_per_million,
    )


def route_usable(*, route: ModelProvider) -> bool:
    """Tell whether a call through `route` can be made now (enabled and keyed)."""
    provider = route.provider
    if not (route.enabled and provider.enabled):
        return False
    if not provider_needs_key(provider=provider):
        return True
    return provider_api_key(provider=provider) is not None


def resolve(user: User | None, model_id: str) -> CallTarget:
    """Return how to call `model_id` for `user`, or raise the ResolutionError that says why not.

    `user` None is a guest who has no row yet. A platform model's resolution depends only on
    the user's tier, and is cached per tier and model (`models_registry.cache`).
    """
    from models_registry.selectors import tier_key

    if model_id.startswith(BYOK_PREFIX):
        hook = byok_hook_get()
        if hook is None:
            raise UnknownModelError("This model does not exist.", model_id=model_id)
        return hook.resolve(user=user, model_id=model_id)
    return registry_cached(
        ("resolve", tier_key(user=user), model_id), lambda: _resolve_platform(user, model_id)
    )


def _resolve_platform(user: User | None, model_id: str) -> CallTarget:
    from models_registry.selectors import model_ids_allowed_for_user

    model = Model.objects.filter(id=model_id).first()
    if model is None:
        raise UnknownModelError("This model does not exist.", model_id=model_id)
    if not model.enabled:
        raise ModelDisabledError(f"{model.display_name} is currently disabled.", model_id=model_id)
    if model_id not in model_ids_allowed_for_user(user=user):
        raise ModelNotInTierError(
            f"{model.display_name} is not included in your plan.", model_id=model_id
        )

    routes = [
        route
        for route in ModelProvider.objects.filter(model=model, enabled=True)
        .select_related("provider")
        .order_by("-is_default", "provider__name")
    ]
    live = [route for route in routes if route.provider.enabled]
    if not live:
        raise ProviderDisabledError(
            f"No provider currently serves {model.display_name}.", model_id=model_id
        )
    for route in live:
        endpoint = provider_endpoint(provider=route.provider)
        if endpoint.api_key is None and provider_needs_key(provider=route.provider):
            continue
        return _target(model=model, route=route, endpoint=endpoint)
    raise ProviderMissingKeyError(
        f"{model.display_name} cannot be used: {live[0].provider.name} has no API key configured.",
        model_id=model_id,
    )


aresolve = sync_to_async(resolve)
