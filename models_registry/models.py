"""Model registry: tiers now; creators, providers and models arrive with the registry issue."""

from __future__ import annotations

from django.db import models


class Tier(models.Model):
    """A class of users: which platform models they may use and their token bucket."""

    GUEST = "guest"
    REGULAR = "regular"

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    bucket_capacity = models.PositiveIntegerField(default=20)
    refill_amount = models.PositiveIntegerField(default=20)
    refill_interval_seconds = models.PositiveIntegerField(default=3600)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bucket_capacity", "slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refill_interval_seconds__gt=0), name="tier_refill_interval_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name
