"""Writes of the token buckets: the one-statement check-and-consume, admission, reset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from models_registry.models import Tier
from ratelimit.buckets import (
    BucketConfig,
    carry,
    limit_reached_sentence,
    refill,
    remaining_sentence,
    seconds_until,
)
from ratelimit.models import Bucket, UserRateLimit
from ratelimit.selectors import BucketStatus, bucket_config

# Check and consume in one statement, so the row lock taken by ON CONFLICT DO UPDATE serialises
# concurrent requests on a bucket and each sees the tokens the previous one left: a bucket of
# capacity C admits at most C requests between refills, whatever the concurrency. The refill is
# computed here from the stored row, never from a value read earlier by Python.
# - No row yet: the bucket starts full, so the first request leaves capacity - cost.
# - The row stores the capacity its tokens were counted against; when the tier's capacity
#   differs (the tier was changed, or edited, by any means), what was spent stays spent
#   (`buckets.carry`) before the refill is added.
# - A refused request stores the refilled state with no cost taken, which loses nothing (the
#   refill anchor moves by whole intervals only, and only while the bucket is not full).
# - `last_admitted` carries this statement's decision to RETURNING, which in PostgreSQL 15 sees
#   only the new row; it also shows admins who is being throttled.
# - `now` NULL means the database's clock, one clock for every application host.
# - `relaxed_commit` turns synchronous_commit off for this statement's own transaction: the
#   fsync at each commit was most of its cost (p50 0.5 -> 0.2 ms measured), and a database
#   crash can then forget at most the last ~0.6 s of decisions, i.e. give a few tokens back,
#   never corrupt a bucket. It must stay off inside a caller's transaction, which it would
#   make non-durable as a whole.
# Named parameters work with both Django's cursor and psycopg's (the bench uses this text).
CONSUME_SQL = """
WITH p AS MATERIALIZED (
    SELECT %(user_id)s::uuid AS user_id,
           %(bucket)s::varchar AS bucket,
           %(cost)s::integer AS cost,
           %(capacity)s::integer AS capacity,
           %(refill_amount)s::integer AS refill_amount,
           GREATEST(1, %(refill_interval_seconds)s::integer) AS refill_interval_seconds,
           COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now,
           CASE WHEN %(relaxed_commit)s::boolean
                THEN set_config('synchronous_commit', 'off', true) END AS commit_mode
)
INSERT INTO ratelimit_userratelimit AS b
    (user_id, bucket, tokens, capacity, refilled_at, last_request_at, last_admitted)
SELECT p.user_id, p.bucket,
       CASE WHEN p.capacity >= p.cost THEN p.capacity - p.cost ELSE p.capacity END,
       p.capacity, p.now, p.now, p.capacity >= p.cost
FROM p
ON CONFLICT (user_id, bucket) DO UPDATE SET
    (tokens, capacity, refilled_at, last_request_at, last_admitted) = (
        SELECT CASE WHEN r.tokens >= p.cost THEN r.tokens - p.cost ELSE r.tokens END,
               p.capacity,
               CASE WHEN r.tokens >= p.capacity THEN p.now ELSE r.refilled_at END,
               p.now,
               r.tokens >= p.cost
        FROM p
        CROSS JOIN LATERAL (
            SELECT GREATEST(
                0, floor(extract(epoch FROM p.now - b.refilled_at) / p.refill_interval_seconds)
            )::bigint AS intervals,
            GREATEST(0, LEAST(
                p.capacity, p.capacity - (COALESCE(b.capacity, p.capacity) - b.tokens)
            )) AS carried
        ) AS n
        CROSS JOIN LATERAL (
            SELECT LEAST(p.capacity, n.carried + n.intervals * p.refill_amount)::integer AS tokens,
                   b.refilled_at + n.intervals * make_interval(secs => p.refill_interval_seconds)
                       AS refilled_at
        ) AS r
    )
RETURNING b.tokens, b.refilled_at, b.last_admitted, (SELECT now FROM p)
"""


@dataclass(frozen=True)
class Decision:
    """The answer to one request: admitted or not, and what the bucket holds now."""

    allowed: bool
    bucket: str
    cost: int
    remaining: int
    capacity: int
    # Seconds until this request would be admitted: 0 when allowed, None when it never will
    # with the current configuration (a cost above the capacity, or no refill).
    retry_after_seconds: int | None
    # When the next refill lands; None when the bucket is full or never refills.
    next_refill_at: datetime | None
    refill_amount: int
    decided_at: datetime

    @property
    def status(self) -> BucketStatus:
        """What the bucket holds after this decision, as the meter shows it."""
        return BucketStatus(
            bucket=self.bucket,
            remaining=self.remaining,
            capacity=self.capacity,
            next_refill_at=self.next_refill_at,
            refill_amount=self.refill_amount,
            now=self.decided_at,
        )

    @property
    def message(self) -> str:
        """Say the decision in words, e.g. "Limit reached, next message in 12 min"."""
        if self.allowed:
            return remaining_sentence(
                bucket=self.bucket, remaining=self.remaining, capacity=self.capacity
            )
        return limit_reached_sentence(bucket=self.bucket, wait_seconds=self.retry_after_seconds)


def ratelimit_consume(
    *,
    user_id: uuid.UUID,
    bucket: str,
    cost: int = 1,
    capacity: int,
    refill_amount: int,
    refill_interval_seconds: int,
    now: datetime | None = None,
) -> Decision:
    """Take `cost` tokens from the user's bucket if it holds them, in one atomic statement.

    Never raises for a refusal: the caller answers 429 with `decision.retry_after_seconds`.
    Call it outside a transaction (or just before committing one): inside one, the row lock is
    held until the commit and concurrent requests of the same user wait for it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            CONSUME_SQL,
            {
                "user_id": user_id,
                "bucket": str(bucket),
                "cost": cost,
                "capacity": capacity,
                "refill_amount": refill_amount,
                "refill_interval_seconds": refill_interval_seconds,
                "now": now,
                "relaxed_commit": not connection.in_atomic_block,
            },
        )
        tokens, refilled_at, allowed, db_now = cursor.fetchone()
    config = BucketConfig(
        capacity=capacity,
        refill_amount=refill_amount,
        refill_interval_seconds=refill_interval_seconds,
    )
    return _decision(
        allowed=allowed,
        bucket=bucket,
        cost=cost,
        tokens=tokens,
        refilled_at=refilled_at,
        config=config,
        now=db_now,
    )


def _decision(
    *,
    allowed: bool,
    bucket: str,
    cost: int,
    tokens: int,
    refilled_at: datetime,
    config: BucketConfig,
    now: datetime,
) -> Decision:
    refills = tokens < config.capacity and config.refill_amount > 0
    interval = max(1, config.refill_interval_seconds)
    return Decision(
        allowed=allowed,
        bucket=str(bucket),
        cost=cost,
        remaining=min(tokens, config.capacity),
        capacity=config.capacity,
        retry_after_seconds=0
        if allowed
        else seconds_until(
            tokens=tokens, wanted=cost, refilled_at=refilled_at, config=config, now=now
        ),
        next_refill_at=refilled_at + timedelta(seconds=interval) if refills else None,
        refill_amount=config.refill_amount,
        decided_at=now,
    )


def request_admit(*, user: User, bucket: str, cost: int | None = None) -> Decision:
    """Admit one request of `user` against `bucket`, configured by their tier or by settings.

    Generation requests (send, regenerate, edit-and-answer) cost GENERATION_COST on the
    "platform" bucket, or on "byok" when they go through the user's own key or endpoint.
    """
    if cost is None:
        cost = 1 if bucket == Bucket.SYNC else settings.GENERATION_COST
    config = bucket_config(user=user, bucket=bucket)
    return ratelimit_consume(
        user_id=user.id,
        bucket=bucket,
        cost=cost,
        capacity=config.capacity,
        refill_amount=config.refill_amount,
        refill_interval_seconds=config.refill_interval_seconds,
    )


def user_tier_change(*, user: User, tier: Tier | None, now: datetime | None = None) -> None:
    """Put the user in `tier` (None: the default tier); their platform bucket follows it.

    What was spent under the old tier stays spent (`buckets.carry`): with 49 of 50 left, a
    move to a tier of 500 leaves 499, and with 480 of 500 left, a move to one of 50 leaves 30.
    The refills due under the old tier are added first. The old tier is the stored one,
    whatever `user` holds (a form may have set the new one on it already). Every tier change
    goes through here (the admin's user form too); a tier's capacity edited is reconciled by
    the next request's statement and by the meter, from the capacity the row stores.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The user's row first, then the bucket's: concurrent changes of one user's tier queue.
        stored = User.objects.select_for_update().only("tier", "is_guest").get(id=user.id)
        row = (
            UserRateLimit.objects.select_for_update()
            .filter(user_id=user.id, bucket=Bucket.PLATFORM)
            .first()
        )
        old = bucket_config(user=stored, bucket=Bucket.PLATFORM)
        user.tier = tier
        user.save(update_fields=["tier"])
        if row is None:  # a full bucket, whatever its capacity
            return
        new = bucket_config(user=user, bucket=Bucket.PLATFORM)
        tokens = carry(tokens=row.tokens, stored_capacity=row.capacity, capacity=old.capacity)
        state = refill(tokens=tokens, refilled_at=row.refilled_at, config=old, now=now)
        row.tokens = carry(tokens=state.tokens, stored_capacity=old.capacity, capacity=new.capacity)
        row.capacity = new.capacity
        # A bucket that is now full banks no time, as in the statement.
        row.refilled_at = now if row.tokens >= new.capacity else state.refilled_at
        row.save(update_fields=["tokens", "capacity", "refilled_at"])


def ratelimit_reset(*, user_id: uuid.UUID, bucket: str | None = None) -> int:
    """Fill a user's bucket (or all their buckets) again; returns how many were reset.

    Deleting the row is the reset: a missing row is a full bucket under whatever configuration
    applies at the next request, so no capacity needs to be looked up here.
    """
    rows = UserRateLimit.objects.filter(user_id=user_id)
    if bucket is not None:
        rows = rows.filter(bucket=bucket)
    deleted, _ = rows.delete()
    return deleted


def ratelimit_guest_move(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
    """Give the guest's buckets to the account, except those the account already has."""
    kept = UserRateLimit.objects.filter(user_id=account_id).values("bucket")
    UserRateLimit.objects.filter(user_id=guest_id).exclude(bucket__in=kept).update(
        user_id=account_id
    )
    # The guest's remaining rows (buckets the account already had) go with the guest's row.
