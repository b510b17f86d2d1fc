"""The project's middleware: refusing unreadable form bodies, and naming the request's tab."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase

from realtime.origin import origin_reset, origin_set, tab_id_clean


class FormBodyMiddleware:
    """Answer 400 to a form body Django refuses to read (e.g. one declared `charset=utf-16`).

    Django raises `BadRequest` on every read of `request.POST` for such a body, not only the
    first. The CSRF middleware reads it first; the 400 handler and then the 500 handler, both
    wrapped in `requires_csrf_token`, read it again, so the request ended as a 500 with a
    traceback. Read once here, before the CSRF middleware, the body is refused at the door.
    A URL-encoded body is read whole by Django in any case, so reading it here costs nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            try:
                request.POST  # noqa: B018  (reading it is the check)
            except BadRequest as error:
                return HttpResponseBadRequest(
                    f"{error}\n", content_type="text/plain; charset=utf-8"
                )
        return self.get_response(request)


class TabOriginMiddleware:
    """Name the tab that sent the request (its `X-Vero-Tab` header) for the events its writes
    publish, so that tab can tell its own echo from another tab's change."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = origin_set(tab_id_clean(request.headers.get("X-Vero-Tab")))
        try:
            return self.get_response(request)
        finally:
            origin_reset(token)
