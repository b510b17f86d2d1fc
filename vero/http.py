"""The request type our views receive: Django's request plus the guest identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.guests import GuestSession
    from accounts.models import User


class VeroRequest(HttpRequest):
    """A request after our middleware: `guest` is set exactly when nobody is logged in."""

    user: User | AnonymousUser
    guest: GuestSession | None
    guest_cookie_clear: bool


class AuthedRequest(VeroRequest):
    """A request from a logged-in account."""

    user: User
