"""Reads of the model registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models_registry.models import Tier

if TYPE_CHECKING:
    from accounts.models import User


def tier_for_user(*, user: User | None) -> Tier | None:
    """Return the user's tier: their own, else the default for guests or registered users."""
    if user is not None and user.tier_id is not None:
        return user.tier
    slug = Tier.GUEST if user is None or user.is_guest else Tier.REGULAR
    return Tier.objects.filter(slug=slug).first()
