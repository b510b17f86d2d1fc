"""The request type our views receive (Django's request plus what our middleware sets on it),
and the response type of an event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, StreamingHttpResponse

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from django_htmx.middleware import HtmxDetails

    from accounts.guests import GuestSession
    from accounts.models import User


class VeroRequest(HttpRequest):
    """A request after the middleware: `guest` is set exactly when nobody is logged in.

    Set by `accounts.middleware.GuestMiddleware`: `guest`, and `guest_cookie_clear` (a login
    moved the guest's rows, so the response drops their cookie). Set by django-htmx's
    middleware: `htmx`. `_guest_user` is the guest's row once a query has read it
    (`accounts.selectors.actor_get`); it is absent until then, so read it with getattr.
    """

    user: User | AnonymousUser
    guest: GuestSession | None
    guest_cookie_clear: bool
    htmx: HtmxDetails
    _guest_user: User | None


class AuthedRequest(VeroRequest):
    """A request from a logged-in account."""

    user: User


class EventStreamResponse(StreamingHttpResponse):
    """A `text/event-stream` of bytes, written by the server's loop as they come.

    Our ASGI handler (`vero.handler`) writes `raw_chunks` as they are: no per-part wrapping
    and re-chunking. Everything else (the test client, middleware) sees a plain streaming
    response over the same iterator.
    """

    raw_chunks: AsyncIterator[bytes] | None

    def __init__(self, chunks: AsyncIterator[bytes], **kwargs: Any) -> None:
        super().__init__(chunks, content_type="text/event-stream", **kwargs)
        self.raw_chunks = chunks
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream

    def _set_streaming_content(self, value: Any) -> None:
        # Content replaced later (a middleware wrapping it) is written through Django's path.
        self.raw_chunks = None
        super()._set_streaming_content(value)  # type: ignore[misc]
