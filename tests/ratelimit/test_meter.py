"""The account menu's meter: remaining messages in words and a thin bar."""

from __future__ import annotations

from django.template import Context, Template

from accounts.models import User
from models_registry.models import Tier
from ratelimit.models import Bucket
from ratelimit.services import request_admit

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
