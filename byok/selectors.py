"""Reads of users' keys, endpoints and models; lookups that also authorize (404 otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.http import Http404

from byok.models import (
    CUSTOM_SOURCE,
    PLATFORM_KINDS,
    UserByokModel,
    UserCustomProvider,
    UserProviderKey,
)
from models_registry.calls import Capabilities
from models_registry.models import BYOK_PREFIX, ModelProvider, Provider, ProviderKind
from models_registry.resolver import DEFAULT_BASE_URLS

if TYPE_CHECKING:
    from accounts.models import User
    from models_registry.selectors import ModelOption


def byok_keys_for_user(*, user: User | None) -> list[UserProviderKey]:
    if user is None:
        return []
    return list(UserProviderKey.objects.filter(user=user))


def byok_endpoints_for_user(*, user: User | None) -> list[UserCustomProvider]:
    if user is None:
        return []
    return list(UserCustomProvider.objects.filter(user=user))


def _models_of(user: User) -> QuerySet[UserByokModel]:
    return UserByokModel.objects.filter(user=user).select_related("key", "endpoint")


def byok_models_for_user(*, user: User | None) -> list[UserByokModel]:
    return [] if user is None else list(_models_of(user))


def byok_key_get_for_user(*, user: User | None, provider: str) -> UserProviderKey:
    """Return the user's key for a platform provider; 404 when they have none."""
    key = None
    if user is not None and provider in PLATFORM_KINDS:
        key = UserProviderKey.objects.filter(user=user, provider=provider).first()
    if key is None:
        raise Http404("No such key.")
    return key


def byok_endpoint_get_for_user(*, user: User | None, slug: str) -> UserCustomProvider:
    """Return the user's endpoint by slug; 404 for anyone else's or a missing one."""
    endpoint = None
    if user is not None:
        endpoint = UserCustomProvider.objects.filter(user=user, slug=slug).first()
    if endpoint is None:
        raise Http404("No such endpoint.")
    return endpoint


def byok_model_get_for_user(*, user: User | None, model_pk: int) -> UserByokModel:
    """Return one of the user's models by its row id; 404 for anyone else's."""
    model = None if user is None else _models_of(user).filter(pk=model_pk).first()
    if model is None:
        raise Http404("No such model.")
    return model


def byok_model_find(*, user: User | None, model_id: str) -> UserByokModel | None:
    """Return the user's model named by a BYOK id, or None (unknown, malformed, or not theirs)."""
    if user is None or not model_id.startswith(BYOK_PREFIX):
        return None
    # Provider model names may contain ":" (Ollama's "llama3.1:8b"); slugs and kinds cannot.
    source, _, rest = model_id.removeprefix(BYOK_PREFIX).partition(":")
    rows = _models_of(user)
    if source == CUSTOM_SOURCE:
        slug, _, provider_model_id = rest.partition(":")
        rows = rows.filter(endpoint__slug=slug)
    elif source in PLATFORM_KINDS:
        provider_model_id = rest
        rows = rows.filter(key__provider=source)
    else:
        return None
    if not provider_model_id:
        return None
    return rows.filter(provider_model_id=provider_model_id).first()


def platform_base_url(*, kind: str) -> str | None:
    """Where a platform provider answers: the admin's Provider row's URL, else the public API.

    None for Google without an admin URL (its API's address is known to the LLM layer).
    """
    provider = (
        Provider.objects.filter(kind=kind).exclude(base_url="").order_by("-enabled", "slug").first()
    )
    if provider is not None:
        return provider.base_url.rstrip("/")
    return DEFAULT_BASE_URLS.get(kind)


def registry_capabilities(*, kind: str, provider_model_ids: list[str]) -> dict[str, Capabilities]:
    """Capabilities the registry knows for models of a platform provider, by provider model id."""
    routes = ModelProvider.objects.filter(
        provider__kind=kind, provider_model_id__in=provider_model_ids
    ).select_related("model")
    found: dict[str, Capabilities] = {}
    for route in routes:
        found.setdefault(route.provider_model_id, Capabilities.of(route.model))
    return found


def byok_model_options(*, user: User | None) -> list[ModelOption]:
    """Return the user's BYOK models as picker options, grouped by source and marked as theirs."""
    from models_registry.selectors import ModelOption

    options = []
    for model in byok_models_for_user(user=user):
        if model.endpoint is not None:
            group_slug = f"byok-{CUSTOM_SOURCE}-{model.endpoint.slug}"
            group_name = f"Your endpoint: {model.endpoint.name}"
        else:
            assert model.key is not None
            group_slug = f"byok-{model.key.provider}"
            group_name = f"Your {ProviderKind(model.key.provider).label} key"
        options.append(
            ModelOption(
                id=model.model_id,
                display_name=model.display_name,
                creator_slug=group_slug,
                creator_name=group_name,
                capabilities=Capabilities.of(model),
                byok=True,
            )
        )
    options.sort(key=lambda option: (option.creator_name.lower(), option.display_name.lower()))
    return options
