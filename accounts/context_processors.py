"""Template context every page needs: who is acting and their tier."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.services import actor_get
from models_registry.selectors import tier_for_user
from vero.http import VeroRequest


def actor(request: HttpRequest) -> dict[str, Any]:
    if not hasattr(request, "guest"):  # e.g. error pages rendered before our middleware ran
        return {}
    vero_request = cast(VeroRequest, request)
    return {
        "actor": SimpleLazyObject(lambda: actor_get(vero_request)),
        "is_guest": vero_request.guest is not None,
        "tier": SimpleLazyObject(lambda: tier_for_user(user=actor_get(vero_request))),
    }
