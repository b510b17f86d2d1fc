"""The browser cache's JSON endpoints: `POST /api/cache/sync` and `POST /api/cache/key`.

Plain Django views, so Django's CSRF check applies to every caller, guests included (REST
framework's views skip it for requests without a session user). Each reads and checks its
input, answers a bad one with 400 and a sentence before anything is spent or read, and calls
the selector (`realtime.sync`) or the derivation (`realtime.keys`). docs/realtime.md is the
contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.selectors import actor_get
from ratelimit.models import Bucket
from ratelimit.services import request_admit
from realtime.keys import base64url, cache_key_derive
from realtime.sync import (
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    SyncCursorInvalid,
    SyncPosition,
    cache_sync_page,
    cursor_decode,
    sync_position_start,
)
from vero.http import VeroRequest

# A sync request is three small fields; its cursor is a few hundred bytes.
BODY_MAX_BYTES = 4096
_SYNC_FIELDS = {"last_synced_at", "cursor", "page_size", "metadata"}


class _Invalid(Exception):
    """A request this endpoint cannot use, and the sentence that says why."""


def _json(payload: Any, *, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(orjson.dumps(payload), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"  # a user's data, or their key
    for name, value in headers.items():
        response[name] = value
    return response


def _error(message: str, *, status: int, **headers: str) -> HttpResponse:
    return _json({"error": message}, status=status, **headers)


@dataclass(frozen=True)
class _SyncQuery:
    position: SyncPosition
    page_size: int
    metadata: bool = False


def _body_object(request: VeroRequest) -> dict[str, Any]:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    too_long = not declared.isdigit() or int(declared) > BODY_MAX_BYTES
    if too_long or len(request.body) > BODY_MAX_BYTES:
        raise _Invalid(f"The request body must be JSON of at most {BODY_MAX_BYTES} bytes.")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise _Invalid("The request body is not valid JSON.") from error
    if not isinstance(body, dict):
        raise _Invalid("The request body must be a JSON object.")
    unknown = sorted(set(body) - _SYNC_FIELDS)
    if unknown:
        raise _Invalid(
            f"Unknown field {unknown[0]!r}: send last_synced_at, cursor, page_size, metadata."
        )
    if body.get("metadata", False) not in (True, False):
        raise _Invalid("metadata must be true or false.")
    return body


def _last_synced_at(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise _Invalid("last_synced_at must be null or an ISO 8601 time with its offset.")
    return stamp


def _page_size(value: Any) -> int:
    if value is None:
        return PAGE_SIZE_DEFAULT
    if type(value) is not int or not 1 <= value <= PAGE_SIZE_MAX:
        raise _Invalid(f"page_size must be a whole number from 1 to {PAGE_SIZE_MAX}.")
    return value


def _sync_query(request: VeroRequest) -> _SyncQuery:
    """The request's page: the cursor's position, or the start of a sync from last_synced_at."""
    body = _body_object(request)
    page_size = _page_size(body.get("page_size"))
    last_synced_at = _last_synced_at(body.get("last_synced_at"))
    cursor = body.get("cursor")
    if cursor is None:
        position = sync_position_start(last_synced_at=last_synced_at, now=timezone.now())
        # The models and defaults cost more than a sync that finds nothing: a first sync gets
        # them, and a page asks for them once per load, not with every event's sync.
        metadata = position.reset or body.get("metadata", False)
        return _SyncQuery(position=position, page_size=page_size, metadata=metadata)
    if not isinstance(cursor, str):
        raise _Invalid("cursor must be null or the next_cursor of the previous page.")
    try:
        return _SyncQuery(position=cursor_decode(cursor), page_size=page_size)
    except SyncCursorInvalid as error:
        raise _Invalid(error.message) from error


@require_POST
def cache_sync(request: VeroRequest) -> HttpResponse:
    """One page of what changed in the actor's chats; spends one token of their sync bucket.

    A guest who has written nothing yet has no row, hence nothing to sync and no bucket: they
    get an empty page.
    """
    try:
        query = _sync_query(request)
    except _Invalid as error:
        return _error(str(error), status=400)
    user = actor_get(request)
    if user is not None:
        decision = request_admit(user=user, bucket=Bucket.SYNC)
        if not decision.allowed:
            wait = decision.retry_after_seconds
            headers = {"Retry-After": str(wait)} if wait is not None else {}
            return _error(decision.message, status=429, **headers)
    page = cache_sync_page(
        user=user, position=query.position, page_size=query.page_size, metadata=query.metadata
    )
    return _json(page)


def _session_id(request: VeroRequest) -> str | None:
    """The stable id the key derives from: the account's session key, or a known guest's id."""
    if request.user.is_authenticated:
        return request.session.session_key
    if request.guest is not None and not request.guest.fresh:
        return str(request.guest.id)
    return None


@require_POST
def cache_key(request: VeroRequest) -> HttpResponse:
    """The session's cache key (AES-256, base64url); 401 without a session or a guest cookie."""
    session_id = _session_id(request)
    if session_id is None:
        if request.guest is not None:
            request.guest.issue_cookie = False  # no guest is made up for a key
        return _error("Sign in, or use Vero as a guest, before caching chats.", status=401)
    return _json({"key": base64url(cache_key_derive(session_id=session_id))})
