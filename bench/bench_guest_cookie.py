"""Cost of naming a guest on every anonymous request: verify the JWT cookie.

`guest_cookie_verify` is a returning browser (the token was seen before);
`guest_cookie_verify_first_sight` a token verified from scratch (PyJWT's full decode).

Baseline, same run: Django's own signed-cookie check (TimestampSigner) on a payload of the same
size, i.e. what any cookie-based identity would cost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import django
from _harness import figure, median_per_call_seconds

django.setup()

from django.core import signing  # noqa: E402

from accounts import guests  # noqa: E402
from accounts.guests import guest_session_from_cookie, guest_token_issue  # noqa: E402

ROUNDS = 7
CALLS = 5_000


def _per_call_us(fn: Callable[[], object]) -> float:
    return median_per_call_seconds(fn, rounds=ROUNDS, calls=CALLS) * 1e6


def main() -> None:
    token = guest_token_issue(guest_id=uuid.uuid4())
    signer = signing.TimestampSigner(salt="bench")
    signed = signer.sign(str(uuid.uuid4()))

    ours = _per_call_us(lambda: guest_session_from_cookie(token))

    def first_sight() -> object:
        guests._decode.cache_clear()
        return guest_session_from_cookie(token)

    uncached = _per_call_us(first_sight)
    forged = _per_call_us(lambda: guest_session_from_cookie(token[:-2] + "xx"))
    baseline = _per_call_us(lambda: signer.unsign(signed, max_age=86400 * 30))

    figure("guest_cookie_verify", ours, "us", digits=1)
    figure("guest_cookie_verify_first_sight", uncached, "us", digits=1)
    figure("guest_cookie_forged_to_fresh_guest", forged, "us", digits=1)
    figure("django_signed_cookie_baseline", baseline, "us", digits=1)
    figure("guest_cookie_x_vs_baseline", ours / baseline, "ratio", digits=2)


if __name__ == "__main__":
    main()
