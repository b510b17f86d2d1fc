"""Racing requests: a bucket of capacity C admits exactly C, however many arrive at once."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from accounts.models import User
from ratelimit.models import Bucket, UserRateLimit
from ratelimit.services import Decision, ratelimit_consume

REQUESTS = 200
# Each thread holds its own PostgreSQL connection, opened before the race starts. The shared
# test server allows 100 connections (other suites use it too), so 40 threads fire 5 requests
# each; with 2 cores, more threads would not put more statements in flight at once anyway.
THREADS = 40
CONFIG: dict[str, Any] = {"capacity": 50, "refill_amount": 20, "refill_interval_seconds": 3600}


def race(user_id: uuid.UUID, *, now: datetime | None) -> list[Decision]:
    """Send REQUESTS requests from THREADS threads released together by a barrier."""
    barrier = threading.Barrier(THREADS)
    decisions: list[Decision] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            mine = [
                ratelimit_consume(user_id=user_id, bucket=Bucket.PLATFORM, now=now, **CONFIG)
                for _ in range(REQUESTS // THREADS)
            ]
            with lock:
                decisions.extend(mine)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)
        finally:
            connection.close()

    run_all([threading.Thread(target=client) for _ in range(THREADS)])
    assert not errors, errors
    assert len(decisions) == REQUESTS
    return decisions


def run_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


@pytest.mark.django_db(transaction=True)
def test_200_racing_requests_on_a_bucket_of_50_admit_exactly_50_then_the_refill() -> None:
    alice = User.objects.create_user("alice@example.com", "pw")

    first = race(alice.id, now=None)  # the database's clock, as in production

    assert sum(d.allowed for d in first) == 50
    assert sorted(d.remaining for d in first if d.allowed) == list(range(50))
    row = UserRateLimit.objects.get(user=alice)
    assert row.tokens == 0

    after_one_interval = row.refilled_at + timedelta(seconds=3600)
    second = race(alice.id, now=after_one_interval)

    assert sum(d.allowed for d in second) == 20
    assert all(d.retry_after_seconds == 3600 for d in second if not d.allowed)

    after_two_and_a_half = row.refilled_at + timedelta(seconds=3600 * 2.5)
    third = race(alice.id, now=after_two_and_a_half)

    assert sum(d.allowed for d in third) == 20


@pytest.mark.django_db(transaction=True)
def test_racing_first_requests_of_many_users_each_get_their_own_bucket() -> None:
    users = [User.objects.create(is_guest=True) for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    results: dict[uuid.UUID, list[bool]] = {}
    errors: list[BaseException] = []

    def client(user_id: uuid.UUID) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            results[user_id] = [
                ratelimit_consume(user_id=user_id, bucket=Bucket.SYNC, **CONFIG).allowed
                for _ in range(3)
            ]
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    run_all([threading.Thread(target=client, args=(user.id,)) for user in users])

    assert not errors, errors
    assert all(allowed == [True, True, True] for allowed in results.values())
    assert set(UserRateLimit.objects.values_list("tokens", flat=True)) == {47}
