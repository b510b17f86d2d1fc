"""Reads of the model registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Prefetch

from models_registry.cache import registry_cached
from models_registry.calls import Capabilities
from models_registry.models import Model, ModelProvider, Tier
from models_registry.resolver import byok_hook_get, route_usable

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class ModelOption:
    """A model someone may pick, as the picker shows it."""

    id: str
    display_name: str
    creator_slug: str
    creator_name: str
    capabilities: Capabilities
    byok: bool = False


@dataclass(frozen=True)
class CreatorGroup:
    slug: str
    name: str
    models: list[ModelOption]


def tier_key(*, user: User | None) -> int | str:
    """Name the tier that applies to `user` without reading it: its id, or a default's slug."""
    if user is not None and user.tier_id is not None:
        return int(user.tier_id)
    return Tier.GUEST if user is None or user.is_guest else Tier.REGULAR


def tier_for_user(*, user: User | None) -> Tier | None:
    """Return the user's tier: their own, else the default for guests or registered users.

    Read through the registry cache: treat the row as read-only.
    """
    key = tier_key(user=user)
    if isinstance(key, int):
        return registry_cached(("tier", key), lambda: Tier.objects.filter(id=key).first())
    return registry_cached(("tier", key), lambda: Tier.objects.filter(slug=key).first())


def _default_tier_model_ids(*, user: User | None) -> set[str]:
    """The built-in lists from settings, for when the tier rows do not exist yet."""
    if user is None or user.is_guest:
        return set(settings.GUEST_MODELS)
    return set(settings.REGULAR_MODELS)


def model_ids_allowed_for_user(*, user: User | None) -> set[str]:
    """Return the ids of the platform models the user's tier allows (enabled or not)."""
    tier = tier_for_user(user=user)
    if tier is None:
        return _default_tier_model_ids(user=user)
    if tier.includes_all_models:
        return set(Model.objects.values_list("id", flat=True))
    return set(tier.allowed_models.values_list("id", flat=True))


def models_usable_for_user(*, user: User | None) -> list[ModelOption]:
    """Return the models the user can call right now: enabled, in their tier, with a live route.

    BYOK models (from the `byok` app's hook) come after the platform ones.
    """
    allowed = model_ids_allowed_for_user(user=user)
    routes = ModelProvider.objects.filter(enabled=True, provider__enabled=True).select_related(
        "provider"
    )
    models = (
        Model.objects.filter(enabled=True, id__in=allowed)
        .select_related("creator")
        .prefetch_related(Prefetch("routes", queryset=routes, to_attr="live_routes"))
    )
    options = [
        ModelOption(
            id=model.id,
            display_name=model.display_name,
            creator_slug=model.creator.slug,
            creator_name=model.creator.name,
            capabilities=Capabilities.of(model),
        )
        for model in models
        if any(route_usable(route=route) for route in model.live_routes)
    ]
    hook = byok_hook_get()
    if hook is not None:
        options += hook.models_for_user(user=user)
    return options


def models_grouped_by_creator(*, options: list[ModelOption]) -> list[CreatorGroup]:
    """Group picker options by creator, keeping their order."""
    groups: dict[tuple[str, bool], CreatorGroup] = {}
    for option in options:
        key = (option.creator_slug, option.byok)
        if key not in groups:
            groups[key] = CreatorGroup(
                slug=option.creator_slug, name=option.creator_name, models=[]
            )
        groups[key].models.append(option)
    return list(groups.values())


def model_default_id(*, options: list[ModelOption]) -> str | None:
    """Return the model a new chat starts with: DEFAULT_CHAT_MODEL if usable, else the first."""
    ids = [option.id for option in options]
    if settings.DEFAULT_CHAT_MODEL in ids:
        return str(settings.DEFAULT_CHAT_MODEL)
    return ids[0] if ids else None
