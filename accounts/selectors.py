"""Reads about people that pages and forms need."""

from __future__ import annotations

from allauth.account.models import EmailAddress

from accounts.models import User


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
