"""Admission by configuration: the tier for platform models, settings for own keys and sync."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import User
from models_registry.models import Tier
from ratelimit.models import Bucket, UserRateLimit
from ratelimit.selectors import bucket_config, ratelimit_status
from ratelimit.services import ratelimit_reset, request_admit

SMALL_BUCKETS = {
    "BYOK_BUCKET_CAPACITY": 3,
    "BYOK_REFILL_AMOUNT": 1,
    "BYOK_REFILL_INTERVAL_SECONDS": 30,
    "SYNC_BUCKET_CAPACITY": 2,
    "SYNC_REFILL_AMOUNT": 2,
    "SYNC_REFILL_INTERVAL_SECONDS": 10,
}


@pytest.fixture
def pro(db: None) -> Tier:
    return Tier.objects.create(
        slug="pro", name="Pro", bucket_capacity=4, refill_amount=4, refill_interval_seconds=600
    )


@pytest.fixture
def regular(db: None) -> Tier:
    return Tier.objects.create(
        slug=Tier.REGULAR,
        name="Regular",
        bucket_capacity=2,
        refill_amount=1,
        refill_interval_seconds=3600,
    )


def admitted(user: User, bucket: str, attempts: int) -> int:
    return sum(request_admit(user=user, bucket=bucket).allowed for _ in range(attempts))


def test_platform_requests_are_limited_by_the_users_own_tier(alice: User, pro: Tier) -> None:
    alice.tier = pro
    alice.save()

    assert admitted(alice, Bucket.PLATFORM, 10) == 4


def test_a_user_without_a_tier_gets_the_default_tier_for_registered_users(
    alice: User, regular: Tier
) -> None:
    assert admitted(alice, Bucket.PLATFORM, 10) == 2


def test_without_any_tier_rows_the_tier_models_defaults_apply(alice: User) -> None:
    config = bucket_config(user=alice, bucket=Bucket.PLATFORM)

    assert (config.capacity, config.refill_amount, config.refill_interval_seconds) == (
        20,
        20,
        3600,
    )


@override_settings(**SMALL_BUCKETS)
def test_own_key_and_sync_buckets_are_configured_by_settings(alice: User, pro: Tier) -> None:
    alice.tier = pro
    alice.save()

    assert admitted(alice, Bucket.BYOK, 10) == 3
    assert admitted(alice, Bucket.SYNC, 10) == 2


@override_settings(**SMALL_BUCKETS)
def test_an_empty_platform_bucket_does_not_block_the_users_own_keys(
    alice: User, regular: Tier
) -> None:
    assert admitted(alice, Bucket.PLATFORM, 10) == 2

    assert request_admit(user=alice, bucket=Bucket.BYOK).allowed
    assert request_admit(user=alice, bucket=Bucket.SYNC).allowed


@override_settings(GENERATION_COST=2)
def test_a_generation_costs_generation_cost_tokens(alice: User, pro: Tier) -> None:
    alice.tier = pro
    alice.save()

    assert admitted(alice, Bucket.PLATFORM, 10) == 2


def test_a_changed_tier_applies_to_the_next_request(alice: User, regular: Tier, pro: Tier) -> None:
    assert admitted(alice, Bucket.PLATFORM, 10) == 2
    alice.tier = pro
    alice.save()
    UserRateLimit.objects.filter(user=alice).update(
        refilled_at=timezone.now() - timedelta(seconds=600)
    )

    assert admitted(alice, Bucket.PLATFORM, 10) == 4


def test_an_unknown_bucket_is_a_programming_error(alice: User) -> None:
    with pytest.raises(ValueError, match="Unknown rate limit bucket"):
        request_admit(user=alice, bucket="tea")


def test_status_of_a_bucket_never_used_is_full(alice: User, pro: Tier) -> None:
    alice.tier = pro
    alice.save()

    status = ratelimit_status(user=alice)

    assert (status.remaining, status.capacity, status.next_refill_at) == (4, 4, None)
    assert status.summary == "4 / 4 messages left"
    assert not UserRateLimit.objects.exists()


def test_status_shows_what_is_left_without_consuming(alice: User, pro: Tier) -> None:
    alice.tier = pro
    alice.save()
    decision = request_admit(user=alice, bucket=Bucket.PLATFORM)

    statuses = [ratelimit_status(user=alice) for _ in range(3)]

    assert [s.remaining for s in statuses] == [3, 3, 3]
    assert statuses[0].next_refill_at == decision.next_refill_at
    assert statuses[0].summary == "3 / 4 messages left · refills in 10 min"
    assert request_admit(user=alice, bucket=Bucket.PLATFORM).remaining == 2


def test_status_includes_the_refills_due_since_the_last_request(alice: User, pro: Tier) -> None:
    alice.tier = pro
    alice.save()
    admitted(alice, Bucket.PLATFORM, 4)
    row = UserRateLimit.objects.get(user=alice)

    later = ratelimit_status(user=alice, now=row.refilled_at + timedelta(seconds=601))

    assert later.remaining == 4
    assert later.is_full


def test_status_of_an_empty_bucket_says_when_the_next_message_comes(alice: User, pro: Tier) -> None:
    alice.tier = pro
    alice.save()
    admitted(alice, Bucket.PLATFORM, 4)
    row = UserRateLimit.objects.get(user=alice)

    status = ratelimit_status(user=alice, now=row.refilled_at + timedelta(seconds=48))

    assert status.is_empty
    assert status.summary == "Limit reached, next message in 10 min"


def test_status_of_a_guest_without_a_row_is_a_full_guest_bucket(db: None) -> None:
    Tier.objects.create(
        slug=Tier.GUEST,
        name="Guest",
        bucket_capacity=5,
        refill_amount=5,
        refill_interval_seconds=60,
    )

    status = ratelimit_status(user=None)

    assert (status.remaining, status.capacity) == (5, 5)


def test_reset_fills_one_bucket_again(alice: User, regular: Tier) -> None:
    admitted(alice, Bucket.PLATFORM, 2)
    admitted(alice, Bucket.SYNC, 1)

    assert ratelimit_reset(user_id=alice.id, bucket=Bucket.PLATFORM) == 1

    assert ratelimit_status(user=alice).remaining == 2
    assert UserRateLimit.objects.filter(user=alice, bucket=Bucket.SYNC).exists()


def test_reset_without_a_bucket_fills_all_of_the_users_buckets_only(
    alice: User, bob: User, regular: Tier
) -> None:
    for user in (alice, bob):
        admitted(user, Bucket.PLATFORM, 1)
        admitted(user, Bucket.BYOK, 1)

    assert ratelimit_reset(user_id=alice.id) == 2

    assert not UserRateLimit.objects.filter(user=alice).exists()
    assert UserRateLimit.objects.filter(user=bob).count() == 2
