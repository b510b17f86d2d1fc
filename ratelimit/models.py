"""Token buckets: one row per user and bucket; a missing row is a full bucket."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Bucket(models.TextChoices):
    PLATFORM = "platform", "Platform models"
    BYOK = "byok", "Your own keys"
    SYNC = "sync", "Cache sync"


class UserRateLimit(models.Model):
    """The state of one user's bucket, as `ratelimit_consume` last left it.

    Tokens are whole numbers: a bucket refills `refill_amount` tokens at once for every full
    `refill_interval_seconds` since `refilled_at`, which is what a tier says ("20 messages every
    hour") and what the meter shows ("refills in 3 h"); integers also keep the arithmetic exact
    (no 49.999 token that refuses a request). `refilled_at` moves by whole intervals, so a
    partial interval is never lost. The capacity and refill rate come from the user's tier or
    from settings at each request, so changing a tier applies at once; the capacity the tokens
    were counted against is stored too, so that when it changes what was spent stays spent
    (`buckets.carry`: 49 of 50 left becomes 499 of 500, not 49 of 500).
    """

    # No index of its own: the unique (user, bucket) index serves every lookup by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="rate_limits",
        db_index=False,
    )
    bucket = models.CharField(max_length=16, choices=Bucket.choices)
    tokens = models.IntegerField(help_text="Tokens left after the last request.")
    capacity = models.IntegerField(
        null=True,
        help_text="The capacity `tokens` was counted against (empty: written before it was "
        "stored, taken as the current one).",
    )
    refilled_at = models.DateTimeField(
        help_text="When the current refill interval started (the last refill, or the moment "
        "the bucket was last full)."
    )
    last_request_at = models.DateTimeField()
    last_admitted = models.BooleanField(
        default=True,
        help_text="Whether the last request was admitted (False: the user is being throttled).",
    )

    class Meta:
        verbose_name = "rate limit bucket"
        ordering = ["-last_request_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "bucket"], name="ratelimit_user_bucket_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_bucket_display()}"
