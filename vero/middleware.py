"""Keep the middleware chain in one thread under ASGI.

Django runs a middleware that can be both sync and async in the mode of the handler it wraps,
and the innermost handler is async under ASGI: without this, every `MiddlewareMixin`
(sessions, CSRF, auth, …) would run its hooks through `sync_to_async`, two thread hops per
middleware per request. This sync-only middleware sits innermost, so the whole chain above it
runs in sync mode in one thread, entered once; async views still run on the server's loop.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase


class SyncChainMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)
