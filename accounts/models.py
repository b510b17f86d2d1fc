"""People: registered accounts and guests share one user table."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An account needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person: a guest (no email, created on first write) or a registered account."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True, null=True, blank=True)
    is_guest = models.BooleanField(default=False)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    tier = models.ForeignKey(
        "models_registry.Tier",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="users",
        help_text="Empty: the default tier for guests or registered users.",
    )
    # Preferences, used to personalise the system prompt.
    name = models.CharField(max_length=120, blank=True)
    occupation = models.CharField(max_length=120, blank=True)
    custom_instructions = models.TextField(max_length=4000, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    PREFERENCE_FIELDS: ClassVar[tuple[str, ...]] = ("name", "occupation", "custom_instructions")

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(is_guest=False) | models.Q(email__isnull=True),
                name="user_guest_has_no_email",
            ),
        ]
        indexes = [models.Index(fields=["is_guest", "date_joined"], name="user_guest_joined_idx")]

    def __str__(self) -> str:
        return self.email or f"guest {str(self.id)[:8]}"

    @property
    def display_name(self) -> str:
        if self.is_guest:
            return "Guest"
        return self.name or (self.email or "").split("@")[0]
