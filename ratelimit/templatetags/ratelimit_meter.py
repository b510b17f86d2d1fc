"""`{% ratelimit_meter actor %}`: the remaining-messages meter for the account menu."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.models import User
from ratelimit.models import Bucket
from ratelimit.selectors import ratelimit_status

register = template.Library()


@register.inclusion_tag("ratelimit/_meter.html")
def ratelimit_meter(user: User | None, bucket: str = Bucket.PLATFORM) -> dict[str, Any]:
    """Render a bucket's status; `user` None (a guest who has not written yet) shows it full."""
    # `actor` in templates is a lazy object that may wrap None: `or None` unwraps that case.
    return {"status": ratelimit_status(user=user or None, bucket=bucket)}
