"""The tab behind the current request, so the events its writes cause can name it.

A page sends its tab's id in the `X-Vero-Tab` header (static/js/requests.js); the middleware
puts it here for the request's duration, and `realtime.events` adds it to every event the
request's writes publish as `origin`: that tab then knows the change is its own echo. Writes
no tab caused (the generation's end, the reaper, the admin) carry no origin.
"""

from __future__ import annotations

import re
from contextvars import ContextVar, Token

_TAB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

_origin: ContextVar[str | None] = ContextVar("vero_tab_origin", default=None)


def tab_id_clean(raw: str | None) -> str | None:
    """The header's tab id when it is one (1 to 64 letters, digits, `-` or `_`), else None."""
    if raw is None or not _TAB_ID.fullmatch(raw):
        return None
    return raw


def origin_get() -> str | None:
    return _origin.get()


def origin_set(tab_id: str | None) -> Token[str | None]:
    return _origin.set(tab_id)


def origin_reset(token: Token[str | None]) -> None:
    _origin.reset(token)
