"""The token bucket's decisions: one atomic statement, driven by an explicit clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from accounts.models import User
from ratelimit.models import Bucket, UserRateLimit
from ratelimit.services import Decision, ratelimit_consume

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# Five tokens, two more for every full minute.
CONFIG: dict[str, Any] = {"capacity": 5, "refill_amount": 2, "refill_interval_seconds": 60}


def consume(user: User, *, at: datetime, cost: int = 1, bucket: str = Bucket.PLATFORM) -> Decision:
    return ratelimit_consume(user_id=user.id, bucket=bucket, cost=cost, now=at, **CONFIG)


def admitted(user: User, *, at: datetime, attempts: int, bucket: str = Bucket.PLATFORM) -> int:
    return sum(consume(user, at=at, bucket=bucket).allowed for _ in range(attempts))


def test_a_new_bucket_starts_full_and_admits_until_it_is_empty(alice: User) -> None:
    decisions = [consume(alice, at=T0) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert all(d.capacity == 5 for d in decisions)


def test_an_admitted_request_has_no_wait_and_says_what_is_left(alice: User) -> None:
    decision = consume(alice, at=T0)

    assert decision.retry_after_seconds == 0
    assert decision.next_refill_at == T0 + timedelta(seconds=60)
    assert decision.message == "4 / 5 messages left"


def test_a_refusal_says_when_the_next_refill_admits_a_request(alice: User) -> None:
    admitted(alice, at=T0, attempts=5)

    decision = consume(alice, at=T0 + timedelta(seconds=15))

    assert not decision.allowed
    assert decision.retry_after_seconds == 45
    assert decision.next_refill_at == T0 + timedelta(seconds=60)
    assert decision.message == "Limit reached, next message in 45 s"


def test_a_refusal_does_not_spend_tokens_or_delay_the_refill(alice: User) -> None:
    admitted(alice, at=T0, attempts=5)
    for second in range(1, 60):
        consume(alice, at=T0 + timedelta(seconds=second))

    assert admitted(alice, at=T0 + timedelta(seconds=60), attempts=10) == 2


def test_after_one_interval_the_refill_amount_is_admitted(alice: User) -> None:
    admitted(alice, at=T0, attempts=5)

    assert admitted(alice, at=T0 + timedelta(seconds=60), attempts=10) == 2


def test_a_partial_interval_adds_nothing_but_is_not_lost(alice: User) -> None:
    admitted(alice, at=T0, attempts=5)

    assert admitted(alice, at=T0 + timedelta(seconds=90), attempts=10) == 2  # one interval
    assert admitted(alice, at=T0 + timedelta(seconds=119), attempts=10) == 0
    # The half interval seen at 90 s counted: the second refill lands at 120 s, not 150 s.
    assert admitted(alice, at=T0 + timedelta(seconds=120), attempts=10) == 2


def test_several_intervals_add_up_but_never_beyond_the_capacity(alice: User) -> None:
    admitted(alice, at=T0, attempts=5)

    assert admitted(alice, at=T0 + timedelta(seconds=150), attempts=10) == 4
    assert admitted(alice, at=T0 + timedelta(days=1), attempts=10) == 5


def test_a_full_bucket_banks_no_time_for_later(alice: User) -> None:
    consume(alice, at=T0)  # 4 left; refill due at T0 + 60 s
    assert admitted(alice, at=T0 + timedelta(hours=1), attempts=1) == 1  # full again: 4 left

    decision = consume(alice, at=T0 + timedelta(hours=1, seconds=1))

    assert decision.remaining == 3
    assert decision.next_refill_at == T0 + timedelta(hours=1, seconds=60)


def test_a_clock_running_backwards_never_takes_tokens_away(alice: User) -> None:
    consume(alice, at=T0)

    decision = consume(alice, at=T0 - timedelta(minutes=5))

    assert decision.allowed
    assert decision.remaining == 3


def test_a_request_costing_more_than_is_left_is_refused_and_takes_nothing(alice: User) -> None:
    admitted(alice, at=T0, attempts=3)  # 2 left

    decision = consume(alice, at=T0, cost=3)

    assert not decision.allowed
    assert decision.remaining == 2
    assert decision.retry_after_seconds == 60
    assert consume(alice, at=T0, cost=2).allowed


def test_a_refusal_waits_for_as_many_refills_as_the_cost_needs(alice: User) -> None:
    admitted(alice, at=T0, attempts=5)

    decision = consume(alice, at=T0 + timedelta(seconds=10), cost=5)

    assert decision.retry_after_seconds == 3 * 60 - 10
    assert decision.message == "Limit reached, next message in 3 min"


def test_a_cost_above_the_capacity_is_never_admitted_and_says_so(alice: User) -> None:
    decision = consume(alice, at=T0, cost=6)

    assert not decision.allowed
    assert decision.retry_after_seconds is None
    assert decision.remaining == 5
    assert decision.message == "Limit reached: your plan allows no more messages"


def test_a_bucket_without_refill_never_promises_a_time(alice: User) -> None:
    decisions = [
        ratelimit_consume(
            user_id=alice.id,
            bucket=Bucket.PLATFORM,
            capacity=1,
            refill_amount=0,
            refill_interval_seconds=60,
            now=T0,
        )
        for _ in range(2)
    ]

    assert [d.allowed for d in decisions] == [True, False]
    assert decisions[1].retry_after_seconds is None
    assert decisions[1].next_refill_at is None


def test_each_bucket_and_each_user_has_its_own_tokens(alice: User, bob: User) -> None:
    admitted(alice, at=T0, attempts=5)

    assert not consume(alice, at=T0).allowed
    assert admitted(alice, at=T0, attempts=10, bucket=Bucket.BYOK) == 5
    assert admitted(alice, at=T0, attempts=10, bucket=Bucket.SYNC) == 5
    assert admitted(bob, at=T0, attempts=10) == 5


def test_the_row_records_the_last_decision(alice: User) -> None:
    admitted(alice, at=T0, attempts=6)

    row = UserRateLimit.objects.get(user=alice, bucket=Bucket.PLATFORM)

    assert (row.tokens, row.last_admitted, row.last_request_at) == (0, False, T0)


def test_without_a_clock_the_databases_own_is_used(alice: User) -> None:
    decision = ratelimit_consume(user_id=alice.id, bucket=Bucket.PLATFORM, **CONFIG)

    row = UserRateLimit.objects.get(user=alice, bucket=Bucket.PLATFORM)
    assert decision.allowed
    assert abs((row.last_request_at - datetime.now(UTC)).total_seconds()) < 5
    assert decision.next_refill_at == row.refilled_at + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 s"),
        (59, "59 s"),
        (60, "1 min"),
        (61, "2 min"),
        (12 * 60, "12 min"),
        (3599, "1 h"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
        (3 * 3600 - 1, "3 h"),
        (3 * 3600 + 1200, "3 h"),
        (20 * 3600, "20 h"),
        (3 * 86400, "3 days"),
    ],
)
def test_waits_read_the_way_a_person_says_them(seconds: int, words: str) -> None:
    from ratelimit.buckets import wait_humanize

    assert wait_humanize(seconds) == words


def test_status_agrees_with_the_statement_at_every_step_of_an_irregular_day(alice: User) -> None:
    from random import Random

    from ratelimit.buckets import BucketConfig
    from ratelimit.selectors import bucket_status_from_row

    config = BucketConfig(**CONFIG)
    at = T0
    for step in Random(6).choices([0, 1, 7, 59, 60, 61, 90, 300], k=200):
        at += timedelta(seconds=step)
        row = UserRateLimit.objects.filter(user=alice, bucket=Bucket.PLATFORM).first()
        before = bucket_status_from_row(bucket=Bucket.PLATFORM, row=row, config=config, now=at)

        decision = consume(alice, at=at)

        assert decision.allowed == (before.remaining >= 1)
        assert decision.remaining == before.remaining - decision.allowed
        if not before.is_full:
            assert decision.next_refill_at == before.next_refill_at


def _synchronous_commit() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


def test_inside_a_callers_transaction_the_commit_stays_durable(alice: User) -> None:
    consume(alice, at=T0)  # pytest-django runs this test inside a transaction

    assert _synchronous_commit() == "on"


def test_on_its_own_the_statement_relaxes_only_its_own_commit(alice: User) -> None:
    from django.db import connection

    from ratelimit.services import CONSUME_SQL

    with connection.cursor() as cursor:
        cursor.execute(
            CONSUME_SQL,
            {
                "user_id": alice.id,
                "bucket": Bucket.PLATFORM,
                "cost": 1,
                "now": T0,
                "relaxed_commit": True,
                **CONFIG,
            },
        )

    assert _synchronous_commit() == "off"  # set for this (test's) transaction only
