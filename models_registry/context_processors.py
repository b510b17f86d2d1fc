"""The acting user's tier on every page (the account menu's badge); tiers belong to the registry."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.selectors import actor_get
from models_registry.selectors import tier_for_user
from vero.http import VeroRequest


def tier(request: HttpRequest) -> dict[str, Any]:
    if not hasattr(request, "guest"):  # e.g. error pages rendered before our middleware ran
        return {}
    vero_request = cast(VeroRequest, request)
    return {"tier": SimpleLazyObject(lambda: tier_for_user(user=actor_get(vero_request)))}
