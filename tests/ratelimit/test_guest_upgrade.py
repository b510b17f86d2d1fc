"""Guest → account: buckets move with the guest, and the account's own buckets win."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.models import User
from accounts.services import guest_upgrade
from ratelimit.models import Bucket, UserRateLimit
from ratelimit.services import ratelimit_consume
from tests.helpers import PASSWORD, client_for_guest

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def spend(user: User, bucket: str, count: int) -> None:
    for _ in range(count):
        ratelimit_consume(
            user_id=user.id,
            bucket=bucket,
            capacity=10,
            refill_amount=10,
            refill_interval_seconds=3600,
            now=T0,
        )


def tokens(user: User) -> dict[str, int]:
    return dict(UserRateLimit.objects.filter(user=user).values_list("bucket", "tokens"))


@pytest.fixture
def throttled_guest(guest: User) -> User:
    spend(guest, Bucket.PLATFORM, 10)
    spend(guest, Bucket.SYNC, 3)
    return guest


def test_logging_in_keeps_the_accounts_bucket_and_moves_the_ones_it_lacks(
    throttled_guest: User, alice: User
) -> None:
    spend(alice, Bucket.PLATFORM, 1)
    client = client_for_guest(throttled_guest)

    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert tokens(alice) == {Bucket.PLATFORM: 9, Bucket.SYNC: 7}
    assert not UserRateLimit.objects.filter(user_id=throttled_guest.id).exists()


def test_signing_up_carries_the_guests_spent_buckets_over(throttled_guest: User) -> None:
    client = client_for_guest(throttled_guest)

    client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    account = User.objects.get(email="new@example.com")
    assert tokens(account) == {Bucket.PLATFORM: 0, Bucket.SYNC: 7}


def test_the_upgrade_service_moves_buckets_and_leaves_other_users_alone(
    throttled_guest: User, alice: User, bob: User
) -> None:
    spend(bob, Bucket.BYOK, 2)

    assert guest_upgrade(guest_id=throttled_guest.id, account=alice)

    assert tokens(alice) == {Bucket.PLATFORM: 0, Bucket.SYNC: 7}
    assert tokens(bob) == {Bucket.BYOK: 8}
