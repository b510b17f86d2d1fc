"""The meters on the page follow every request that took from a bucket, in that request's response.

Send, retry, regenerate and an edit that is answered all spend from the bucket; each adds the
same out-of-band update (the account menu's meter and the composer's) through
`meters_update_append`, from its own admission decision: the figure shown is the one that
decided, with no second read of the bucket. A refused request (429) adds it too, so the page
shows the empty bucket and when the next message comes.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from ratelimit.models import Bucket
from ratelimit.services import Decision

# The buckets whose meters the page shows (base.html and the composer show the platform's).
METERED_BUCKETS = frozenset({Bucket.PLATFORM})


def meters_update_append(
    *, request: HttpRequest, response: HttpResponse, decision: Decision | None
) -> HttpResponse:
    """Add the meters' out-of-band update for `decision` to an htmx response, and return it.

    `decision` None (the request spent nothing) and responses that htmx does not swap (no
    htmx, a redirect, no content) are returned as they are: a page that a redirect leads to
    renders its meters afresh.
    """
    swapped = (
        getattr(request, "htmx", False)
        and response.status_code != 204
        and "HX-Redirect" not in response
        and not response.streaming
    )
    if decision is None or not swapped or decision.bucket not in METERED_BUCKETS:
        return response
    update = render_to_string(
        "ratelimit/_meters_oob.html", {"status": decision.status}, request=request
    )
    response.content = response.content + update.encode(response.charset)
    return response
