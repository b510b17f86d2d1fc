"""Template context every page needs: who is acting, their tier, which sign-in options exist."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.selectors import social_providers_available
from accounts.services import actor_get
from models_registry.selectors import tier_for_user


def actor(request: HttpRequest) -> dict[str, Any]:
    if not hasattr(request, "guest"):  # e.g. error pages rendered before our middleware ran
        return {}
    current = SimpleLazyObject(lambda: actor_get(request))  # type: ignore[arg-type]
    return {
        "actor": current,
        "is_guest": request.guest is not None,  # type: ignore[attr-defined]
        "tier": SimpleLazyObject(lambda: tier_for_user(user=actor_get(request))),  # type: ignore[arg-type]
        "social_providers": SimpleLazyObject(social_providers_available),
    }
