"""Give every anonymous request a guest identity, without touching the database."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

from accounts.guests import guest_cookie_clear, guest_cookie_set, guest_session_from_cookie
from vero.http import VeroRequest


class GuestMiddleware(MiddlewareMixin):
    """Set `request.guest` for anonymous visitors and keep their cookie current.

    A missing, forged, expired or malformed cookie simply yields a fresh guest. The guest's
    user row is created only on their first write (`accounts.services.actor_ensure`).
    """

    def process_request(self, request: HttpRequest) -> None:
        vero_request = cast(VeroRequest, request)  # what this method makes of it
        vero_request.guest = None
        vero_request.guest_cookie_clear = False
        if request.user.is_authenticated:
            return
        vero_request.guest = guest_session_from_cookie(
            request.COOKIES.get(settings.GUEST_COOKIE_NAME)
        )

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "guest_cookie_clear", False):
            guest_cookie_clear(response)
            return response
        guest = getattr(request, "guest", None)
        if guest is not None and guest.issue_cookie:
            guest_cookie_set(response, guest_id=guest.id)
        return response
