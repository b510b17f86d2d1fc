"""Writes about people: lazy guests, preferences, the guest → account upgrade, admin bootstrap."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.selectors import actor_get
from vero.http import VeroRequest

logger = logging.getLogger(__name__)


class GuestMover(Protocol):
    """Moves one app's rows from a guest to an account, inside the upgrade's transaction."""

    def __call__(self, *, guest_id: uuid.UUID, account_id: uuid.UUID) -> None: ...


_guest_movers: dict[str, GuestMover] = {}


def guest_mover_register(name: str) -> Callable[[GuestMover], GuestMover]:
    """Register a mover (decorator); each app that owns user rows registers one in ready()."""

    def register(mover: GuestMover) -> GuestMover:
        _guest_movers[name] = mover
        return mover

    return register


def actor_ensure(request: VeroRequest) -> User:
    """Return who is acting, creating the guest's row now: guests exist from their first write."""
    actor = actor_get(request)
    if actor is not None:
        return actor
    assert request.guest is not None, "GuestMiddleware sets a guest for every anonymous request"
    guest_id = request.guest.id
    try:
        with transaction.atomic():
            actor, _ = User.objects.get_or_create(id=guest_id, defaults={"is_guest": True})
    except IntegrityError:
        actor = None
    if actor is None or not actor.is_guest:
        # The id belongs to someone else (it cannot come from a valid cookie): start afresh.
        request.guest.id = uuid.uuid4()
        request.guest.issue_cookie = True
        actor = User.objects.create(id=request.guest.id, is_guest=True)
    request._guest_user = actor
    return actor


def user_preferences_update(
    *, user: User, name: str, occupation: str, custom_instructions: str
) -> User:
    """Save the preferences that personalise the model's system prompt."""
    user.name = name
    user.occupation = occupation
    user.custom_instructions = custom_instructions
    user.save(update_fields=["name", "occupation", "custom_instructions"])
    return user


def guest_upgrade(*, guest_id: uuid.UUID, account: User) -> bool:
    """Move everything a guest owns to `account` in one transaction, then delete the guest.

    The account wins every conflict. Returns False when there was no guest row to move.
    Any failure rolls the whole move back and leaves both users as they were.
    """
    if account.is_guest or account.id == guest_id:
        return False
    with transaction.atomic():
        locked = {
            user.id: user
            for user in User.objects.select_for_update().filter(id__in=[guest_id, account.id])
        }
        guest = locked.get(guest_id)
        if guest is None or not guest.is_guest:
            return False
        target = locked[account.id]
        inherited = {
            field: getattr(guest, field)
            for field in User.PREFERENCE_FIELDS
            if getattr(guest, field) and not getattr(target, field)
        }
        if inherited:
            User.objects.filter(id=target.id).update(**inherited)
        for mover in _guest_movers.values():
            mover(guest_id=guest_id, account_id=target.id)
        guest.delete()
    for field, value in inherited.items():
        setattr(account, field, value)
    return True


def user_admin_bootstrap(*, user: User) -> bool:
    """Make the configured administrator staff and superuser.

    The administrator is the user ADMIN_USER_ID names, or the account on which ADMIN_EMAIL is
    a verified address. Unverified, the address proves nothing: while email verification is
    off, anyone can add any address to their account and make it primary.
    """
    if user.is_guest or (user.is_staff and user.is_superuser):
        return False
    by_id = bool(settings.ADMIN_USER_ID) and str(user.id) == settings.ADMIN_USER_ID.strip().lower()
    admin_email = settings.ADMIN_EMAIL.strip()
    if not by_id and not (
        admin_email
        and EmailAddress.objects.filter(
            user=user, email__iexact=admin_email, verified=True
        ).exists()
    ):
        return False
    user.is_staff = True
    user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    logger.info("admin bootstrap: %s is now staff and superuser", user.id)
    return True
