"""Django's ASGI handler, with the middleware chain and sync views run in one thread hop.

Django builds its ASGI chain in async mode: each `MiddlewareMixin` (sessions, CSRF, auth, …)
then runs its hooks through `sync_to_async`, and a sync view is reached through one more
`async_to_sync` and `sync_to_async` pair. Here the chain is built as under WSGI, in sync mode,
and entered once through `sync_to_async`: a sync view runs in that same thread, and an async
view (a stream) goes back to the server's loop once.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class VeroASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        chain: Any = self._middleware_chain  # type: ignore[has-type]
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)
