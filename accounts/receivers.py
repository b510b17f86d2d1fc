"""Hooks into Django's login and allauth's email confirmation: each receiver hands over to a
service at once."""

from __future__ import annotations

import logging
from typing import Any, cast

from allauth.account.models import EmailAddress
from allauth.account.signals import email_confirmed
from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User
from accounts.services import guest_upgrade, user_admin_bootstrap
from vero.http import VeroRequest

logger = logging.getLogger(__name__)


@receiver(user_logged_in, dispatch_uid="accounts.on_login")
def _on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    user_admin_bootstrap(user=user)
    guest = getattr(request, "guest", None)
    if request is None or guest is None:
        return
    try:
        guest_upgrade(guest_id=guest.id, account=user)
    except Exception:
        # Both users are untouched; the guest cookie stays so the next login tries again.
        logger.exception("guest upgrade failed for guest %s → user %s", guest.id, user.id)
        messages.warning(
            request, "We could not move your guest chats yet; they will move on your next login."
        )
        return
    vero_request = cast(VeroRequest, request)  # GuestMiddleware set `guest` on it
    vero_request.guest = None
    vero_request.guest_cookie_clear = True


@receiver(email_confirmed, dispatch_uid="accounts.on_email_confirmed")
def _on_email_confirmed(sender: Any, email_address: EmailAddress, **kwargs: Any) -> None:
    # Verifying ADMIN_EMAIL is how the administrator proves who they are: no second login.
    user_admin_bootstrap(user=email_address.user)
