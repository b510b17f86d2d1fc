"""The resolver's BYOK hook: a user's own model id becomes a call with their key or endpoint.

BYOK models bypass tier gating (the user pays their provider), but only their owner can use
them: an id that is not one of the user's models is an unknown model, exactly as the registry
says for ids it does not know, so nobody can probe for another user's models.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from byok.models import UserByokModel
from byok.selectors import byok_model_find, byok_model_options, platform_base_url
from byok.urlguard import UnsafeURLError, guard_policy, url_guard_check
from models_registry.calls import KIND_ENGINE, CallTarget, Capabilities, Pricing
from models_registry.models import ProviderKind
from models_registry.resolver import ProviderMissingKeyError, ResolutionError, UnknownModelError
from vero.lib.secrets import SecretDecryptError, secret_decrypt

if TYPE_CHECKING:
    from accounts.models import User
    from models_registry.selectors import ModelOption

logger = logging.getLogger(__name__)


class EndpointUnsafeError(ResolutionError):
    """The user's endpoint, checked again at call time, leads where this server may not reach
    (its name may resolve elsewhere than when it was saved)."""

    code = "endpoint_unsafe"
    default_message = "Your endpoint cannot be used: this server may not reach its address."


def _decrypt(token: str, *, model: UserByokModel, what: str) -> str:
    try:
        return secret_decrypt(token=token)
    except SecretDecryptError as error:
        logger.warning("byok model %s: the stored key cannot be decrypted", model.pk)
        raise ProviderMissingKeyError(
            f"{what} can no longer be read on this server; enter it again in Keys & endpoints.",
            model_id=model.model_id,
        ) from error


def byok_call_target(*, model: UserByokModel) -> CallTarget:
    """Return the call for one of a user's models; a custom endpoint is re-checked now."""
    if model.endpoint is not None:
        endpoint = model.endpoint
        try:
            # Checked against what the host resolves to now, not when it was saved.
            url_guard_check(endpoint.base_url)
        except UnsafeURLError as error:
            raise EndpointUnsafeError(
                f"Your endpoint {endpoint.name} cannot be used: {error.message}",
                model_id=model.model_id,
            ) from error
        api_key = None
        if endpoint.api_key_encrypted:
            api_key = _decrypt(
                endpoint.api_key_encrypted, model=model, what=f"The key of {endpoint.name}"
            )
        kind, slug = ProviderKind.CUSTOM.value, f"byok-custom-{endpoint.slug}"
        api_base: str | None = endpoint.base_url
    else:
        assert model.key is not None
        kind = model.key.provider
        label = ProviderKind(kind).label
        api_key = _decrypt(model.key.api_key_encrypted, model=model, what=f"Your {label} key")
        slug, api_base = f"byok-{kind}", platform_base_url(kind=kind)
    return CallTarget(
        model_id=model.model_id,
        engine=KIND_ENGINE[kind],
        provider_slug=slug,
        provider_kind=kind,
        provider_model=model.provider_model_id,
        api_base=api_base,
        api_key=api_key,
        capabilities=Capabilities.of(model),
        pricing=Pricing(),  # the user's provider bills them; we do not know their prices
        # A custom endpoint's name is checked again by every connection the call makes.
        connect_guard=guard_policy() if model.endpoint is not None else None,
    )


class ByokResolverHook:
    """What `models_registry.resolver` delegates `byok:` ids and the picker's BYOK part to."""

    def resolve(self, *, user: User | None, model_id: str) -> CallTarget:
        model = byok_model_find(user=user, model_id=model_id)
        if model is None:
            raise UnknownModelError("This model does not exist.", model_id=model_id)
        return byok_call_target(model=model)

    def models_for_user(self, *, user: User | None) -> list[ModelOption]:
        return byok_model_options(user=user)
