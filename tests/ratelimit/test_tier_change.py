"""A bucket follows its user's tier: what was spent stays spent, whatever changed the tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from models_registry.models import Tier
from ratelimit.buckets import BucketConfig
from ratelimit.models import Bucket, UserRateLimit
from ratelimit.selectors import bucket_status_from_row, ratelimit_status
from ratelimit.services import ratelimit_consume, request_admit, user_tier_change

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _tier(slug: str, capacity: int) -> Tier:
    """A tier whose bucket refills whole every 3 hours."""
    return Tier.objects.create(
        slug=slug, name=slug.title(), bucket_capacity=capacity, refill_amount=capacity,
        refill_interval_seconds=10800,
    )  # fmt: skip


@pytest.fixture
def regular(db: None) -> Tier:
    return _tier(Tier.REGULAR, 50)


@pytest.fixture
def pro(db: None) -> Tier:
    return _tier(Tier.PRO, 500)


def spend(user: User, count: int) -> None:
    for _ in range(count):
        assert request_admit(user=user, bucket=Bucket.PLATFORM).allowed


def left(user: User) -> str:
    status = ratelimit_status(user=user)
    return f"{status.remaining} / {status.capacity}"


def left_then_after_a_request(user: User) -> tuple[str, int]:
    """What the meter shows, then what the next request leaves."""
    return left(user), request_admit(user=user, bucket=Bucket.PLATFORM).remaining


def test_a_promotion_keeps_what_was_spent(alice: User, regular: Tier, pro: Tier) -> None:
    spend(alice, 1)
    assert left(alice) == "49 / 50"

    user_tier_change(user=alice, tier=pro)

    assert left(alice) == "499 / 500"
    alice.refresh_from_db()
    assert alice.tier_id == pro.id
    row = UserRateLimit.objects.get(user=alice, bucket=Bucket.PLATFORM)
    assert (row.tokens, row.capacity) == (499, 500)
    assert request_admit(user=alice, bucket=Bucket.PLATFORM).remaining == 498


def test_a_demotion_keeps_what_was_spent(alice: User, regular: Tier, pro: Tier) -> None:
    user_tier_change(user=alice, tier=pro)
    spend(alice, 20)

    user_tier_change(user=alice, tier=None)  # back to the default tier, Regular

    assert left(alice) == "30 / 50"


def test_a_demotion_below_what_was_spent_leaves_an_empty_bucket_that_refills(
    alice: User, regular: Tier, pro: Tier
) -> None:
    user_tier_change(user=alice, tier=pro)
    spend(alice, 60)

    user_tier_change(user=alice, tier=regular)

    status = ratelimit_status(user=alice)
    assert (status.remaining, status.capacity) == (0, 50)
    assert status.next_refill_at is not None


def test_the_refills_due_under_the_old_tier_come_first(
    alice: User, regular: Tier, pro: Tier
) -> None:
    ratelimit_consume(
        user_id=alice.id, bucket=Bucket.PLATFORM, cost=50, capacity=50, refill_amount=10,
        refill_interval_seconds=60, now=T0,
    )  # fmt: skip
    Tier.objects.filter(id=regular.id).update(refill_amount=10, refill_interval_seconds=60)
    regular.refresh_from_db()

    # Two minutes later the old tier has given 20 back: 30 were spent when the tier changes.
    user_tier_change(user=alice, tier=pro, now=T0 + timedelta(seconds=120))

    status = ratelimit_status(user=alice, now=T0 + timedelta(seconds=120))
    assert (status.remaining, status.capacity) == (470, 500)


def test_changing_the_tier_of_a_user_who_never_sent_writes_no_bucket(
    alice: User, regular: Tier, pro: Tier
) -> None:
    user_tier_change(user=alice, tier=pro)

    assert not UserRateLimit.objects.filter(user=alice).exists()
    assert left(alice) == "500 / 500"


def test_a_tier_changed_by_other_means_is_reconciled_by_the_meter_and_the_next_request(
    alice: User, regular: Tier, pro: Tier
) -> None:
    spend(alice, 1)

    alice.tier = pro  # as the admin's user form does
    alice.save()

    assert left_then_after_a_request(alice) == ("499 / 500", 498)


def test_a_tier_whose_capacity_is_edited_carries_its_users_buckets_over(
    alice: User, regular: Tier
) -> None:
    spend(alice, 10)

    regular.bucket_capacity = 100
    regular.save()

    assert left_then_after_a_request(alice) == ("90 / 100", 89)


def test_a_row_written_before_capacities_were_stored_is_taken_as_it_is(
    alice: User, regular: Tier
) -> None:
    spend(alice, 3)
    UserRateLimit.objects.filter(user=alice).update(capacity=None)

    assert left_then_after_a_request(alice) == ("47 / 50", 46)


def test_status_agrees_with_the_statement_while_the_capacity_keeps_changing(alice: User) -> None:
    configs = [
        BucketConfig(capacity=5, refill_amount=2, refill_interval_seconds=60),
        BucketConfig(capacity=12, refill_amount=3, refill_interval_seconds=60),
        BucketConfig(capacity=2, refill_amount=1, refill_interval_seconds=30),
    ]
    random = Random(12)
    at = T0
    for _ in range(300):
        at += timedelta(seconds=random.choice([0, 1, 7, 30, 59, 60, 61, 90]))
        config = random.choice(configs)
        row = UserRateLimit.objects.filter(user=alice, bucket=Bucket.PLATFORM).first()
        before = bucket_status_from_row(bucket=Bucket.PLATFORM, row=row, config=config, now=at)

        decision = ratelimit_consume(
            user_id=alice.id, bucket=Bucket.PLATFORM, cost=1, now=at,
            capacity=config.capacity, refill_amount=config.refill_amount,
            refill_interval_seconds=config.refill_interval_seconds,
        )  # fmt: skip

        assert decision.allowed == (before.remaining >= 1)
        assert decision.remaining == before.remaining - decision.allowed
        if not before.is_full:
            assert decision.next_refill_at == before.next_refill_at


def _admin_sets_tier(admin_client: Client, user: User, tier: object) -> Any:
    """Post the admin's user change form as it stands, with `tier` chosen."""
    data = {
        "email": user.email,
        "name": user.name,
        "is_active": "on",
        "tier": tier,
        "_save": "Save",
    }
    return admin_client.post(f"/admin/accounts/user/{user.id}/change/", data)


def test_the_admins_user_form_moves_the_bucket_to_the_new_tier(
    admin_client: Client, alice: User, alice_client: Client, regular: Tier, pro: Tier
) -> None:
    spend(alice, 1)

    response = _admin_sets_tier(admin_client, alice, pro.id)

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.tier_id == pro.id
    # The bucket follows at once, not only when it is next read.
    row = UserRateLimit.objects.get(user=alice, bucket=Bucket.PLATFORM)
    assert (row.tokens, row.capacity) == (499, 500)
    assert "499 / 500 messages left" in alice_client.get("/").content.decode()


def test_the_admins_user_form_counts_the_refills_due_under_the_old_tier(
    admin_client: Client, alice: User, alice_client: Client, regular: Tier, pro: Tier
) -> None:
    Tier.objects.filter(id=regular.id).update(refill_amount=10, refill_interval_seconds=3600)
    spend(alice, 50)
    # Two and a half hours ago: the old tier has given 20 back (the new one would give none yet).
    UserRateLimit.objects.filter(user=alice).update(
        refilled_at=timezone.now() - timedelta(hours=2, minutes=30)
    )

    _admin_sets_tier(admin_client, alice, pro.id)

    assert "470 / 500 messages left" in alice_client.get("/").content.decode()


def test_an_unknown_tier_in_the_admins_user_form_is_refused_and_changes_nothing(
    admin_client: Client, alice: User, regular: Tier
) -> None:
    spend(alice, 1)

    response = _admin_sets_tier(admin_client, alice, 987654)

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    alice.refresh_from_db()
    assert alice.tier_id is None
    row = UserRateLimit.objects.get(user=alice, bucket=Bucket.PLATFORM)
    assert (row.tokens, row.capacity) == (49, 50)
