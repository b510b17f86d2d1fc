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


def test_the_meter_shows_remaining_messages_and_the_next_refill(alice: User) -> None:
    alice.tier = Tier.objects.create(
        slug="pro", name="Pro", bucket_capacity=50, refill_amount=50, refill_interval_seconds=10800
    )
    alice.save()
    for _ in range(13):
        request_admit(user=alice, bucket=Bucket.PLATFORM)

    html = render(alice)

    assert "37 / 50 messages left · refills in 3 h" in html
    assert '<meter class="ratelimit-meter-bar" min="0" max="50" value="37"' in html


def test_the_meter_of_an_empty_bucket_says_when_the_next_message_comes(alice: User) -> None:
    alice.tier = Tier.objects.create(
        slug="tiny", name="Tiny", bucket_capacity=1, refill_amount=1, refill_interval_seconds=720
    )
    alice.save()
    request_admit(user=alice, bucket=Bucket.PLATFORM)

    html = render(alice)

    assert "Limit reached, next message in 12 min" in html
    assert "ratelimit-meter-empty" in html


def test_the_meter_of_a_guest_who_has_not_written_yet_is_full(db: None) -> None:
    assert "20 / 20 messages left" in render(None)


COMPOSER_METER = Template('{% include "ratelimit/_composer_meter.html" with status=status %}')


def render_composer_meter(user: User) -> str:
    return COMPOSER_METER.render(Context({"status": ratelimit_status(user=user)}))


def test_the_composer_says_when_few_messages_are_left_and_when_more_come(alice: User) -> None:
    alice.tier = Tier.objects.create(
        slug="pro", name="Pro", bucket_capacity=50, refill_amount=50, refill_interval_seconds=10800
    )
    alice.save()
    for _ in range(44):
        request_admit(user=alice, bucket=Bucket.PLATFORM)
    plenty = render_composer_meter(alice)
    assert "6 / 50 messages left" in plenty
    assert "composer-meter-low" not in plenty

    request_admit(user=alice, bucket=Bucket.PLATFORM)
    low = render_composer_meter(alice)
    assert "5 messages left, next refill in 3 h" in low
    assert "composer-meter-low" in low

    for _ in range(4):
        request_admit(user=alice, bucket=Bucket.PLATFORM)
    assert "1 message left, next refill in 3 h" in render_composer_meter(alice)
    request_admit(user=alice, bucket=Bucket.PLATFORM)
    assert "Limit reached, next message in 3 h" in render_composer_meter(alice)


def test_a_tenth_of_a_large_allowance_is_already_little(alice: User) -> None:
    alice.tier = Tier.objects.create(
        slug="team", name="Team", bucket_capacity=500, refill_amount=500,
        refill_interval_seconds=3600,
    )  # fmt: skip
    alice.save()
    ratelimit_consume(
        user_id=alice.id, bucket=Bucket.PLATFORM, cost=450, capacity=500, refill_amount=500,
        refill_interval_seconds=3600,
    )  # fmt: skip

    assert "50 messages left, next refill in 1 h" in render_composer_meter(alice)
