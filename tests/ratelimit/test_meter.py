"""The meters: the account menu's (remaining messages in words and a thin bar) and the
composer's, which says so when little is left."""

from __future__ import annotations

from django.template import Context, Template

from accounts.models import User
from models_registry.models import Tier
from ratelimit.models import Bucket
from ratelimit.selectors import ratelimit_status
from ratelimit.services import ratelimit_consume, request_admit

METER = Template("{% load ratelimit_meter %}{% ratelimit_meter actor %}")


def render(actor: User | None) -> str:
    return METER.render(Context({"actor": actor}))


def tier_give(user: User, *, capacity: int, refill_interval_seconds: int) -> None:
    """Put the user in a tier of its own whose bucket refills whole every interval."""
    user.tier = Tier.objects.create(
        slug=f"tier-{capacity}", name=f"Tier {capacity}", bucket_capacity=capacity,
        refill_amount=capacity, refill_interval_seconds=refill_interval_seconds,
    )  # fmt: skip
    user.save()


def spend(user: User, count: int) -> None:
    for _ in range(count):
        request_admit(user=user, bucket=Bucket.PLATFORM)


def test_the_meter_shows_remaining_messages_and_the_next_refill(alice: User) -> None:
    tier_give(alice, capacity=50, refill_interval_seconds=10800)
    spend(alice, 13)

    html = render(alice)

    assert "37 / 50 messages left · refills in 3 h" in html
    assert '<meter class="ratelimit-meter-bar" min="0" max="50" value="37"' in html


def test_the_meter_of_an_empty_bucket_says_when_the_next_message_comes(alice: User) -> None:
    tier_give(alice, capacity=1, refill_interval_seconds=720)
    spend(alice, 1)

    html = render(alice)

    assert "Limit reached, next message in 12 min" in html
    assert "ratelimit-meter-empty" in html


def test_the_meter_of_a_guest_who_has_not_written_yet_is_full(db: None) -> None:
    assert "20 / 20 messages left" in render(None)


COMPOSER_METER = Template('{% include "ratelimit/_composer_meter.html" with status=status %}')


def render_composer_meter(user: User) -> str:
    return COMPOSER_METER.render(Context({"status": ratelimit_status(user=user)}))


def test_the_composer_says_when_few_messages_are_left_and_when_more_come(alice: User) -> None:
    tier_give(alice, capacity=50, refill_interval_seconds=10800)
    spend(alice, 44)
    plenty = render_composer_meter(alice)
    assert "6 / 50 messages left" in plenty
    assert "composer-meter-low" not in plenty

    spend(alice, 1)
    low = render_composer_meter(alice)
    assert "5 messages left, next refill in 3 h" in low
    assert "composer-meter-low" in low

    spend(alice, 4)
    assert "1 message left, next refill in 3 h" in render_composer_meter(alice)
    spend(alice, 1)
    assert "Limit reached, next message in 3 h" in render_composer_meter(alice)


def test_a_tenth_of_a_large_allowance_is_already_little(alice: User) -> None:
    tier_give(alice, capacity=500, refill_interval_seconds=3600)
    ratelimit_consume(
        user_id=alice.id, bucket=Bucket.PLATFORM, cost=450, capacity=500, refill_amount=500,
        refill_interval_seconds=3600,
    )  # fmt: skip

    assert "50 messages left, next refill in 1 h" in render_composer_meter(alice)
