"""Template context every page needs: who is acting, and whether they are a guest."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.selectors import actor_get
from vero.http import VeroRequest


def actor(request: HttpRequest) -> dict[str, Any]:
    if not hasattr(request, "guest"):  # e.g. error pages rendered before our middleware ran
        return {}
    vero_request = cast(VeroRequest, request)
    return {
        "actor": SimpleLazyObject(lambda: actor_get(vero_request)),
        "is_guest": vero_request.guest is not None,
    }
