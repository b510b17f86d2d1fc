"""What a bucket is, independent of storage: its configuration, the refill rule, and the words.

`carry` and `refill` are the Python twins of the same steps in `services.CONSUME_SQL`; the
tests hold them equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from ratelimit.models import Bucket

_NOUNS = {
    Bucket.PLATFORM: ("message", "messages"),
    Bucket.BYOK: ("message", "messages"),
    Bucket.SYNC: ("sync request", "sync requests"),
}


@dataclass(frozen=True)
class BucketConfig:
    capacity: int
    refill_amount: int
    refill_interval_seconds: int


@dataclass(frozen=True)
class Refilled:
    tokens: int
    refilled_at: datetime


def carry(*, tokens: int, stored_capacity: int | None, capacity: int) -> int:
    """Return the tokens of a bucket counted against `stored_capacity`, under `capacity`.

    When a tier (or its capacity) changes, what was spent stays spent: remaining = capacity -
    (stored capacity - tokens), within [0, capacity]. So 49 of 50 becomes 499 of 500 (a
    promotion gives the difference at once) and 480 of 500 becomes 30 of 50. A row stored
    without its capacity is taken as counted against the current one.
    """
    spent = (capacity if stored_capacity is None else stored_capacity) - tokens
    return max(0, min(capacity, capacity - spent))


def refill(*, tokens: int, refilled_at: datetime, config: BucketConfig, now: datetime) -> Refilled:
    """Return the bucket after adding the whole intervals elapsed since `refilled_at`."""
    interval = max(1, config.refill_interval_seconds)
    # A clock that went backwards (another host, a test's `now`) must not remove tokens.
    elapsed = max(0.0, (now - refilled_at).total_seconds())
    intervals = math.floor(elapsed / interval)
    refilled = min(config.capacity, tokens + intervals * config.refill_amount)
    if refilled >= config.capacity:
        # A full bucket banks no time: the next interval starts when it is next used.
        return Refilled(tokens=refilled, refilled_at=now)
    return Refilled(
        tokens=refilled, refilled_at=refilled_at + timedelta(seconds=intervals * interval)
    )


def seconds_until(
    *, tokens: int, wanted: int, refilled_at: datetime, config: BucketConfig, now: datetime
) -> int | None:
    """Return how long until the bucket holds `wanted` tokens; None if it never will."""
    if tokens >= wanted:
        return 0
    if wanted > config.capacity or config.refill_amount <= 0:
        return None
    intervals = math.ceil((wanted - tokens) / config.refill_amount)
    ready_at = refilled_at + timedelta(seconds=intervals * max(1, config.refill_interval_seconds))
    return max(1, math.ceil((ready_at - now).total_seconds()))


def noun(*, bucket: str, count: int) -> str:
    singular, plural = _NOUNS.get(Bucket(bucket), ("request", "requests"))
    return singular if count == 1 else plural


def remaining_sentence(*, bucket: str, remaining: int, capacity: int) -> str:
    """Say what is left: "37 / 50 messages left"."""
    return f"{remaining} / {capacity} {noun(bucket=bucket, count=2)} left"


def limit_reached_sentence(*, bucket: str, wait_seconds: int | None) -> str:
    """Say an empty bucket: "Limit reached, next message in 12 min" (None: it never refills)."""
    if wait_seconds is None:
        return f"Limit reached: your plan allows no more {noun(bucket=bucket, count=2)}"
    return f"Limit reached, next {noun(bucket=bucket, count=1)} in {wait_humanize(wait_seconds)}"


def wait_humanize(seconds: int) -> str:
    """Say a wait the way a person would: "40 s", "12 min", "1 h 5 min", "3 h", "2 days"."""
    if seconds < 60:
        return f"{max(seconds, 1)} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 3 and minutes:
        return f"{hours} h {minutes} min"
    hours = round(seconds / 3600)
    if hours < 48:
        return f"{hours} h"
    return f"{round(seconds / 86400)} days"
