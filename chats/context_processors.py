"""The sidebar's first window of chats and the rate-limit meter, on every page."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.selectors import actor_get
from chats.selectors import chat_list_page
from ratelimit.selectors import ratelimit_status
from vero.http import VeroRequest


def sidebar(request: HttpRequest) -> dict[str, Any]:
    if not hasattr(request, "guest"):
        return {}
    vero_request = cast(VeroRequest, request)
    return {
        "chat_page": SimpleLazyObject(
            lambda: chat_list_page(user=actor_get(vero_request), size=settings.CHAT_LIST_PAGE_SIZE)
        ),
        "rate_status": SimpleLazyObject(lambda: ratelimit_status(user=actor_get(vero_request))),
    }
