"""Reads about people that pages and forms need, and who is acting on a request.

Who is acting is read without a query when it can be: the logged-in account, or a guest's row
that an earlier read of this request kept (`actor_guest_remember`). Creating a guest's row is
a write: `accounts.services.actor_ensure`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings

from accounts.guests import guest_token_verify
from accounts.models import User
from vero.http import VeroRequest


def administrator_exists() -> bool:
    """Whether anyone can administer this server yet (a fresh install has nobody)."""
    return User.objects.filter(is_staff=True, is_active=True).exists()


def email_held_by_another_user(*, email: str, user: User) -> bool:
    """Return whether an account other than `user` holds `email`, verified or not.

    Held means its account email, or an address added on /accounts/email/ (allauth's
    EmailAddress). Compared without case, as the unique constraint on the account email is.
    """
    return (
        User.objects.filter(email__iexact=email).exclude(id=user.id).exists()
        or EmailAddress.objects.filter(email__iexact=email).exclude(user_id=user.id).exists()
    )


def actor_get(request: VeroRequest) -> User | None:
    """Return who is acting: the logged-in account, the guest's row if it exists, or None."""
    known = actor_known(request)
    if known is not None or request.guest is None:
        return known
    cached = User.objects.filter(id=request.guest.id, is_guest=True).first()
    request._guest_user = cached
    return cached


def actor_known(request: VeroRequest) -> User | None:
    """Return who is acting when that needs no query: the account, or a guest row read before."""
    if request.user.is_authenticated:
        return request.user
    return getattr(request, "_guest_user", None)


def actor_guest_remember(request: VeroRequest, user: User) -> None:
    """Keep the guest's row that a query already brought (e.g. with their chat)."""
    request._guest_user = user


def socket_actor_id(scope: Mapping[str, Any]) -> uuid.UUID | None:
    """Return who opens a WebSocket: the session's account, else the guest a valid guest
    cookie names; None for anyone else.

    `scope` is a Channels scope after its auth middleware (`user`, `cookies`). Unlike a page
    request, a missing or forged guest cookie names nobody: a socket has no response that
    could hand out a new guest's cookie, and a made-up guest would only ever hear silence.
    """
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return uuid.UUID(str(user.pk))
    claims = guest_token_verify(scope.get("cookies", {}).get(settings.GUEST_COOKIE_NAME))
    return None if claims is None else claims.guest_id
