"""Reads about people."""

from __future__ import annotations

from allauth.account.utils import filter_users_by_email

from accounts.models import User


def email_held_by_another_user(*, email: str, user: User) -> bool:
    """Return whether an account other than `user` holds `email`, verified or not.

    Held means its account email, or an address added on /accounts/email/ (allauth's
    EmailAddress); compared without case, as allauth and our unique constraint compare.
    """
    return any(other.pk != user.pk for other in filter_users_by_email(email))
