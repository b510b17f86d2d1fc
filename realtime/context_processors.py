"""What every page tells the browser cache: the name of its session's key."""

from __future__ import annotations

from realtime.keys import cache_key_derive, cache_key_id, cache_session_id
from vero.http import VeroRequest


def cache_key(request: VeroRequest) -> dict[str, str]:
    """`cache_key_id`: a tab that keeps this session's key opens its cache without a request
    (the sidebar paints before the network answers); another session's key is not used."""
    session_id = cache_session_id(request)
    if session_id is None:
        return {}
    return {"cache_key_id": cache_key_id(cache_key_derive(session_id=session_id))}
