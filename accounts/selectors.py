"""Reads on accounts that pages need."""

from __future__ import annotations

from accounts.models import User


def administrator_exists() -> bool:
    """Whether anyone can administer this server yet (a fresh install has nobody)."""
    return User.objects.filter(is_staff=True, is_active=True).exists()
