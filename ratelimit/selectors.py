"""Reads of the token buckets: configuration and status, never consuming."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Field
from django.utils import timezone

from accounts.models import User
from models_registry.models import Tier
from models_registry.selectors import tier_for_user
from ratelimit.buckets import (
    BucketConfig,
    carry,
    limit_reached_sentence,
    noun,
    refill,
    remaining_sentence,
    wait_humanize,
)
from ratelimit.models import Bucket, UserRateLimit

# The composer says how many messages are left from this many (or a tenth of the capacity).
LOW_REMAINING = 5


@dataclass(frozen=True)
class BucketStatus:
    """What the meter shows: tokens left now, out of how many, and when more arrive."""

    bucket: str
    remaining: int
    capacity: int
    next_refill_at: datetime | None  # None: full, or never refills
    refill_amount: int
    now: datetime

    @property
    def is_full(self) -> bool:
        return self.remaining >= self.capacity

    @property
    def is_empty(self) -> bool:
        return self.remaining <= 0

    @property
    def seconds_to_refill(self) -> int | None:
        if self.next_refill_at is None:
            return None
        return max(1, int((self.next_refill_at - self.now).total_seconds() + 0.999))

    @property
    def refill_in(self) -> str:
        """The wait until the next refill in words ("3 h"), or "" when none is coming."""
        seconds = self.seconds_to_refill
        return "" if seconds is None else wait_humanize(seconds)

    @property
    def low_mark(self) -> int:
        """At or below this little is left: 5 messages, or a tenth of a larger capacity."""
        return min(self.capacity, max(LOW_REMAINING, self.capacity // 10))

    @property
    def is_low(self) -> bool:
        """Whether the composer should say how little is left (never for a full bucket)."""
        return not self.is_full and self.remaining <= self.low_mark

    @property
    def count(self) -> str:
        """Say what is left: "37 / 50 messages left"."""
        return remaining_sentence(
            bucket=self.bucket, remaining=self.remaining, capacity=self.capacity
        )

    @property
    def summary(self) -> str:
        """Say the status: "37 / 50 messages left · refills in 3 h", or when a refill is due."""
        if self.is_empty:
            return self._limit_reached
        return f"{self.count} · refills in {self.refill_in}" if self.refill_in else self.count

    @property
    def low_note(self) -> str:
        """What the composer says when little is left: "3 messages left, next refill in 12 min"."""
        if self.is_empty:
            return self._limit_reached
        text = f"{self.remaining} {noun(bucket=self.bucket, count=self.remaining)} left"
        return f"{text}, next refill in {self.refill_in}" if self.refill_in else text

    @property
    def _limit_reached(self) -> str:
        return limit_reached_sentence(bucket=self.bucket, wait_seconds=self.seconds_to_refill)


def _tier_config(tier: Tier | None) -> BucketConfig:
    if tier is None:
        # No tier rows yet (a cold start before seed_registry): the Tier model's own defaults.
        def default(name: str) -> int:
            field = Tier._meta.get_field(name)
            assert isinstance(field, Field)
            return int(field.get_default())

        return BucketConfig(
            capacity=default("bucket_capacity"),
            refill_amount=default("refill_amount"),
            refill_interval_seconds=default("refill_interval_seconds"),
        )
    return BucketConfig(
        capacity=tier.bucket_capacity,
        refill_amount=tier.refill_amount,
        refill_interval_seconds=tier.refill_interval_seconds,
    )


def bucket_config(*, user: User | None, bucket: str) -> BucketConfig:
    """Return a bucket's configuration: the user's tier for "platform", settings otherwise."""
    if bucket == Bucket.PLATFORM:
        return _tier_config(tier_for_user(user=user))
    if bucket == Bucket.BYOK:
        return BucketConfig(
            capacity=settings.BYOK_BUCKET_CAPACITY,
            refill_amount=settings.BYOK_REFILL_AMOUNT,
            refill_interval_seconds=settings.BYOK_REFILL_INTERVAL_SECONDS,
        )
    if bucket == Bucket.SYNC:
        return BucketConfig(
            capacity=settings.SYNC_BUCKET_CAPACITY,
            refill_amount=settings.SYNC_REFILL_AMOUNT,
            refill_interval_seconds=settings.SYNC_REFILL_INTERVAL_SECONDS,
        )
    raise ValueError(f"Unknown rate limit bucket {bucket!r}")


def bucket_status_from_row(
    *, bucket: str, row: UserRateLimit | None, config: BucketConfig, now: datetime
) -> BucketStatus:
    """Return the status a stored row (None: no row, a full bucket) implies at `now`."""
    if row is None:
        return BucketStatus(
            bucket=bucket,
            remaining=config.capacity,
            capacity=config.capacity,
            next_refill_at=None,
            refill_amount=config.refill_amount,
            now=now,
        )
    tokens = carry(tokens=row.tokens, stored_capacity=row.capacity, capacity=config.capacity)
    state = refill(tokens=tokens, refilled_at=row.refilled_at, config=config, now=now)
    refills = state.tokens < config.capacity and config.refill_amount > 0
    interval = max(1, config.refill_interval_seconds)
    return BucketStatus(
        bucket=bucket,
        remaining=state.tokens,
        capacity=config.capacity,
        next_refill_at=state.refilled_at + timedelta(seconds=interval) if refills else None,
        refill_amount=config.refill_amount,
        now=now,
    )


def ratelimit_status(
    *, user: User | None, bucket: str = Bucket.PLATFORM, now: datetime | None = None
) -> BucketStatus:
    """Return what the user's bucket holds now without consuming; no row means a full bucket.

    `user` None is a guest who has not written anything yet (no row, so a full guest bucket).
    """
    now = now or timezone.now()
    config = bucket_config(user=user, bucket=bucket)
    row = None
    if user is not None:
        row = UserRateLimit.objects.filter(user_id=user.id, bucket=bucket).first()
    return bucket_status_from_row(bucket=bucket, row=row, config=config, now=now)


def ratelimit_statuses_for_rows(
    *, rows: Iterable[UserRateLimit], now: datetime | None = None
) -> dict[int, BucketStatus]:
    """Return the status of each row (by pk), looking each distinct tier up only once.

    The rows should come with `select_related("user__tier")` (as the admin's list does).
    """
    now = now or timezone.now()
    configs: dict[tuple[object, str], BucketConfig] = {}
    statuses: dict[int, BucketStatus] = {}
    for row in rows:
        user = row.user
        # Users without a tier share the default tier of guests or of registered users.
        key = (user.tier_id or ("default", user.is_guest), row.bucket)
        if key not in configs:
            configs[key] = bucket_config(user=user, bucket=row.bucket)
        statuses[row.pk] = bucket_status_from_row(
            bucket=row.bucket, row=row, config=configs[key], now=now
        )
    return statuses
