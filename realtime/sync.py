"""The cache sync's reads: what changed in a user's chats since a browser's last sync, in pages.

`POST /api/cache/sync` (docs/realtime.md) answers from here. A page is a fixed number of SQL
statements whatever its size (the head, the chats, their messages, their deleted messages),
and a chat that changed carries only what changed in it: one new answer in a 10,000-message chat
costs that answer (and its question, whose selection moved), never the tree.

Pages are keyset pages on the chats' `(updated_at, id)`, ascending, with no upper bound: a chat
that changes while a client pages is sent again on a later page (the client keeps the newest)
rather than skipped. The opaque cursor carries the first page's `server_timestamp`, the client's
`last_synced_at` and where the page stopped (inside a chat, when the byte cap split it). It is
signed, so a forged one is refused; every read is filtered by the acting user, so a cursor that
names another user's chat yields nothing of theirs.
"""

from __future__ import annotations

import html as html_text
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core import signing
from django.db import connection

from accounts.models import User
from chats.markdown import markdown_render
from models_registry.calls import parts_text
from models_registry.selectors import model_default_id, models_usable_for_user
from vero.errors import VeroError

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 500
_CURSOR_SALT = "vero.realtime.sync.cursor"
# What one message's JSON costs besides its HTML (keys, three ids, two stamps): the byte cap
# is kept with estimates, read in SQL without loading the messages that do not fit.
_MESSAGE_OVERHEAD_BYTES = 300
_PAGE_OVERHEAD_BYTES = 400
_DELETED_ID_BYTES = 40


class SyncCursorInvalid(VeroError):
    code = "sync_cursor_invalid"
    default_message = "This sync cursor is not valid: start the sync again without it."


@dataclass(frozen=True)
class SyncPosition:
    """Where a sync stands: decoded from a cursor, or the start of a sync (`first`)."""

    server_timestamp: datetime | None  # None on the first page: read before it
    since: datetime | None  # None: every chat whole (a first sync, or a reset)
    reset: bool = False
    after_updated_at: datetime | None = None  # the last chat sent whole on earlier pages
    after_id: uuid.UUID | None = None
    split_chat: uuid.UUID | None = None  # a chat the byte cap split, and its last message sent
    split_after: uuid.UUID | None = None

    @property
    def first(self) -> bool:
        return self.server_timestamp is None


def sync_position_start(*, last_synced_at: datetime | None, now: datetime) -> SyncPosition:
    """The first page's position. A first sync, and a client older than the tombstones'
    retention (it may have missed deletions), drop their cache and get every chat whole."""
    retention = timedelta(days=settings.SYNC_TOMBSTONE_RETENTION_DAYS)
    if last_synced_at is not None and last_synced_at >= now - retention:
        return SyncPosition(server_timestamp=None, since=last_synced_at)
    return SyncPosition(server_timestamp=None, since=None, reset=True)


# -- the cursor ---------------------------------------------------------------------------------


def _text(value: datetime | uuid.UUID | None) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return None if value is None else str(value)


def cursor_encode(position: SyncPosition) -> str:
    """The opaque, signed cursor of a position after the first page."""
    values = [
        _text(position.server_timestamp), _text(position.since), _text(position.after_updated_at),
        _text(position.after_id), _text(position.split_chat), _text(position.split_after),
    ]  # fmt: skip
    return signing.dumps(values, salt=_CURSOR_SALT, compress=False)


def _stamp(value: Any, *, required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError("not an aware timestamp")
    return parsed


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not an id")
    return uuid.UUID(value)


def cursor_decode(cursor: str) -> SyncPosition:
    """The position a cursor names; `SyncCursorInvalid` when it was not made here, or is odd."""
    try:
        values = signing.loads(cursor, salt=_CURSOR_SALT)
        if not isinstance(values, list) or len(values) != 6:
            raise ValueError("not a cursor")
        position = SyncPosition(
            server_timestamp=_stamp(values[0], required=True), since=_stamp(values[1]),
            after_updated_at=_stamp(values[2]), after_id=_uuid(values[3]),
            split_chat=_uuid(values[4]), split_after=_uuid(values[5]),
        )  # fmt: skip
    except (signing.BadSignature, ValueError, TypeError) as error:
        raise SyncCursorInvalid() from error
    if (position.after_updated_at is None) != (position.after_id is None) or (
        position.split_chat is None
    ) != (position.split_after is None):
        raise SyncCursorInvalid()
    return position


# -- the statements -----------------------------------------------------------------------------

# The server timestamp (first page), how many chats the user has, and the chats deleted since
# the last sync (first page).
#
# Why not simply now(): a write stamps `updated_at` with its transaction's start (`now()`) and
# commits later. A sync that read now() while such a write was in flight, and then ran before it
# committed, would not see it, and the next sync (from this timestamp) would skip it for good,
# its stamp being older. So the timestamp is the oldest start among this database's other
# transactions still open (pg_stat_activity, which shows the application's own role its own
# backends), or the clock when none is: every write not yet visible to this sync stamps at or
# after it. One microsecond less, because the next sync asks for stamps strictly after it. A
# long transaction (a migration, a stuck session) only holds the timestamp back: the next sync
# sends some chats again; it never misses one.
_HEAD_SQL = """
SELECT
    CASE WHEN %(first)s THEN LEAST(
        clock_timestamp(),
        (SELECT min(xact_start) FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend'
           AND pid <> pg_backend_pid())
    ) - interval '1 microsecond' END,
    (SELECT count(*) FROM chats_chat WHERE user_id = %(user)s),
    ARRAY(SELECT chat_id FROM chats_chatdeletion
          WHERE %(first)s AND user_id = %(user)s AND deleted_at > %(since)s
          ORDER BY deleted_at)
"""

_CHAT_COLUMNS = """id, title, created_at, updated_at, tree_version, settings, root_message_index,
    parent_chat_id, forked_from_message_id"""

# A chat the byte cap split on the previous page comes first (the user's only), then the keyset
# (`_NEVER` and `_NO_ID` stand for no bound: every chat is after them).
_CHATS_SQL = """
(SELECT id, title, created_at, updated_at, tree_version, settings, root_message_index,
        parent_chat_id, forked_from_message_id, true AS continued
 FROM chats_chat WHERE user_id = %(user)s AND id = %(split_chat)s)
UNION ALL
(SELECT id, title, created_at, updated_at, tree_version, settings, root_message_index,
        parent_chat_id, forked_from_message_id, false
 FROM chats_chat
 WHERE user_id = %(user)s AND updated_at > %(since)s
   AND updated_at >= %(after_at)s AND (updated_at, id) > (%(after_at)s, %(after_id)s)
 ORDER BY updated_at, id LIMIT %(limit)s)
ORDER BY continued DESC, updated_at, id
"""
_NEVER = datetime(1, 1, 1, tzinfo=UTC)
_NO_ID = uuid.UUID(int=0)

# The page's messages up to the byte cap, in one statement: whole chats' settled messages, and
# delta chats' messages changed since the last sync (the (chat, updated_at) index reads only
# those); `size` estimates each one's JSON without reading the rows that will not fit, and
# only the rows whose running total starts below the cap are read whole. `in_chat` says how
# many the chat has in all, so a chat cut by the cap is known to continue.
_MESSAGES_SQL = """
WITH page AS (
    SELECT * FROM unnest(%(chats)s::uuid[], %(whole)s::boolean[], %(afters)s::uuid[])
        WITH ORDINALITY AS p(chat_id, whole, after_id, ord)
), candidate AS (
    SELECT m.ctid, m.id, p.ord, p.after_id, octet_length(m.html) AS html_size,
           pg_column_size(m.parts) AS parts_size, octet_length(m.error) AS error_size
    FROM page p JOIN chats_message m ON m.chat_id = p.chat_id
    WHERE p.whole AND m.status <> 'streaming'
    UNION ALL
    SELECT m.ctid, m.id, p.ord, p.after_id, octet_length(m.html), pg_column_size(m.parts),
           octet_length(m.error)
    FROM page p JOIN chats_message m ON m.chat_id = p.chat_id AND m.updated_at > %(since)s
    WHERE NOT p.whole AND m.status <> 'streaming'
), running AS (
    SELECT ctid, id, ord, size, sum(size) OVER (ORDER BY ord, id) AS upto,
           count(*) OVER (PARTITION BY ord) AS in_chat
    FROM candidate c CROSS JOIN LATERAL (
        SELECT %(overhead)s + c.error_size
               + CASE WHEN c.html_size > 0 THEN c.html_size ELSE c.parts_size END AS size
    ) s
    WHERE c.after_id IS NULL OR c.id > c.after_id
)
SELECT r.ord, r.size, r.in_chat, m.id::text, m.parent_id::text, m.role, m.status, m.model_id,
       m.error, m.selected_child_index, (extract(epoch FROM m.created_at) * 1000000)::bigint,
       to_char(m.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
       m.html, CASE WHEN m.html = '' THEN m.parts END
FROM running r JOIN chats_message m ON m.ctid = r.ctid
WHERE r.upto - r.size < %(budget)s
ORDER BY r.ord, r.id
"""

_MESSAGE_DELETIONS_SQL = """
SELECT chat_id, array_agg(message_id ORDER BY deleted_at) FROM chats_messagedeletion
WHERE chat_id = ANY(%(chats)s) AND deleted_at > %(since)s
GROUP BY chat_id
"""


@dataclass
class _Chat:
    row: tuple[Any, ...]
    whole: bool  # its messages are all of them (else: those changed since)
    continued: bool  # the rest of a chat the previous page split
    after: uuid.UUID | None  # continued: its last message sent
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    in_chat: int = 0

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(str(self.row[0]))

    @property
    def updated_at(self) -> datetime:
        return self.row[3]


def _head(*, user_id: uuid.UUID | None, position: SyncPosition) -> tuple[datetime, int, list[Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            _HEAD_SQL, {"first": position.first, "user": user_id, "since": position.since}
        )
        stamp, total, deletions = cursor.fetchone()
    stamp = stamp or position.server_timestamp
    assert stamp is not None  # read on the first page, carried by the cursor after it
    return stamp, total, deletions


def _chats(*, user_id: uuid.UUID, position: SyncPosition, page_size: int) -> list[_Chat]:
    params = {
        "user": user_id, "split_chat": position.split_chat,
        "since": position.since or _NEVER, "after_at": position.after_updated_at or _NEVER,
        "after_id": position.after_id or _NO_ID, "limit": page_size + 1,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_CHATS_SQL, params)
        rows = cursor.fetchall()
    keyset_ids = {row[0] for row in rows if not row[-1]}
    chats = []
    for row in rows:
        continued = bool(row[-1])
        if continued and row[0] in keyset_ids:
            continue  # it changed since: the keyset sends it again, from its start
        whole = position.since is None or row[2] > position.since
        after = position.split_after if continued else None
        chats.append(_Chat(row=row, whole=whole, continued=continued, after=after))
    return chats


def _messages_load(*, chats: list[_Chat], since: datetime | None) -> None:
    """Give each chat its messages up to the byte cap (and the count it has in all)."""
    if not chats:
        return
    params: dict[str, Any] = {
        "chats": [chat.id for chat in chats],
        "whole": [chat.whole for chat in chats],
        "afters": [chat.after for chat in chats],
        "since": since, "overhead": _MESSAGE_OVERHEAD_BYTES, "budget": settings.SYNC_PAGE_BYTES,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_MESSAGES_SQL, params)
        rows = cursor.fetchall()
    for row in rows:
        chat = chats[row[0] - 1]
        chat.in_chat = row[2]
        chat.messages.append(row)


def _message_deletions(*, chats: list[_Chat], since: datetime | None) -> dict[Any, list[Any]]:
    delta = [chat.id for chat in chats if not chat.whole and not chat.continued]
    if not delta:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_MESSAGE_DELETIONS_SQL, {"chats": delta, "since": since})
        return {uuid.UUID(str(chat_id)): ids for chat_id, ids in cursor.fetchall()}


# -- the page -----------------------------------------------------------------------------------


def _message_html(*, role: str, html: str, parts: Any) -> str:
    """The message's sanitized HTML as the chat page shows it: a finished answer's stored
    rendering; a question's text, escaped; an answer without one (interrupted), rendered."""
    if html:
        return html
    text = parts_text(orjson.loads(parts) if isinstance(parts, str | bytes) else parts or [])
    if role == "user":
        return html_text.escape(text)  # as Django's escape does, without its lazy wrapper
    return markdown_render(text) if text else ""


# What the cache keeps of a file part (docs/attachments.md): metadata, never bytes.
_FILE_KEYS = ("attachment_id", "name", "kind", "content_type", "size")


def _message_files(parts: Any) -> list[dict[str, Any]]:
    """A question's attachments as its file parts say (read with its parts: no statement)."""
    loaded = orjson.loads(parts) if isinstance(parts, str | bytes) else parts or []
    return [
        {key: part.get(key) for key in _FILE_KEYS}
        for part in loaded
        if isinstance(part, dict) and part.get("type") == "file"
    ]


def _message_json(row: tuple[Any, ...]) -> dict[str, Any]:
    (_ord, _size, _in_chat, message_id, parent, role, status, model_id, error, selected,
     created, updated_at, html, parts) = row  # fmt: skip
    message = {
        "id": message_id, "parent": parent, "role": role, "status": status,
        "model_id": model_id, "error": error, "selected_child_index": selected,
        "created": created, "updated_at": updated_at,
        "html": _message_html(role=role, html=html, parts=parts),
    }  # fmt: skip
    files = _message_files(parts) if role == "user" and parts else []
    if files:
        message["files"] = files
    return message


def _chat_json(chat: _Chat, deleted: list[Any]) -> dict[str, Any]:
    (chat_id, title, created_at, updated_at, tree_version, chat_settings, root_index,
     parent_chat, forked_from, _continued) = chat.row  # fmt: skip
    if isinstance(chat_settings, str):  # jsonb comes as text through Django's connection
        chat_settings = orjson.Fragment(chat_settings)
    return {
        "id": chat_id, "title": title, "display_title": title or "New chat",
        "created_at": created_at, "updated_at": updated_at, "tree_version": tree_version,
        "settings": chat_settings, "root_message_index": root_index,
        "parent_chat": parent_chat, "forked_from_message": forked_from,
        "whole": chat.whole and not chat.continued, "messages": [],
        "deleted_messages": deleted, "more_messages": False,
    }  # fmt: skip


@dataclass
class _Page:
    upserts: list[dict[str, Any]] = field(default_factory=list)
    used: int = _PAGE_OVERHEAD_BYTES
    stopped: bool = False  # the cap ended the page before its last chat
    split: tuple[_Chat, uuid.UUID] | None = None  # a chat cut inside, and its last message
    last_whole: _Chat | None = None  # the last chat sent to its end from the keyset


def _page_fill(*, chats: list[_Chat], deletions: dict[Any, list[Any]], used: int) -> _Page:
    """Add chats, and their messages, until the estimated size passes SYNC_PAGE_BYTES."""
    budget = settings.SYNC_PAGE_BYTES
    page = _Page(used=used)
    for chat in chats:
        if page.used >= budget and page.upserts:
            page.stopped = True
            return page
        entry = _chat_json(chat, deletions.get(chat.id, []))
        page.upserts.append(entry)
        page.used += len(orjson.dumps(entry)) + _DELETED_ID_BYTES * len(entry["deleted_messages"])
        for row in chat.messages:
            if page.used >= budget and (len(page.upserts) > 1 or entry["messages"]):
                break
            entry["messages"].append(_message_json(row))
            page.used += row[1]
        if chat.in_chat and not entry["messages"]:  # it starts on the next page
            page.upserts.pop()
            page.stopped = True
            return page
        if len(entry["messages"]) < chat.in_chat:
            entry["more_messages"] = True
            page.split = (chat, entry["messages"][-1]["id"])
            return page
        if not chat.continued:
            page.last_whole = chat
    return page


def _next_position(
    *, position: SyncPosition, stamp: datetime, page: _Page, more_chats: bool
) -> SyncPosition | None:
    """Where the next page starts, or None when this page ends the sync."""
    if page.split is None and not page.stopped and not more_chats:
        return None
    after_at, after_id = position.after_updated_at, position.after_id
    if page.last_whole is not None:
        after_at, after_id = page.last_whole.updated_at, page.last_whole.id
    split_chat = split_after = None
    if page.split is not None:
        chat, last = page.split
        split_chat, split_after = chat.id, uuid.UUID(str(last))
        if not chat.continued:  # the keyset goes on after it
            after_at, after_id = chat.updated_at, chat.id
    return SyncPosition(
        server_timestamp=stamp, since=position.since, after_updated_at=after_at,
        after_id=after_id, split_chat=split_chat, split_after=split_after,
    )  # fmt: skip


def _metadata(user: User | None) -> dict[str, Any]:
    """What a cached app needs to start a chat offline: the models it may pick, the default."""
    options = models_usable_for_user(user=user)
    return {
        "models": [{"id": option.id, "name": option.display_name} for option in options],
        "default_model": model_default_id(options=options),
    }


def cache_sync_page(
    *, user: User | None, position: SyncPosition, page_size: int, metadata: bool = True
) -> dict[str, Any]:
    """One page of the sync for `user` (None: a guest with no row yet, who has nothing).

    `position` is `sync_position_start(...)` for a first page, else the decoded cursor. The
    result is the response's JSON object (docs/realtime.md), ready for orjson; its `metadata`
    is null unless asked for.
    """
    user_id = user.id if user is not None else None
    stamp, total, deletions = _head(user_id=user_id, position=position)
    chats = _chats(user_id=user_id, position=position, page_size=page_size) if user_id else []
    more_chats = len(chats) > page_size
    chats = chats[:page_size]
    _messages_load(chats=chats, since=position.since)
    message_deletions = _message_deletions(chats=chats, since=position.since)
    used = _PAGE_OVERHEAD_BYTES + _DELETED_ID_BYTES * len(deletions)
    page = _page_fill(chats=chats, deletions=message_deletions, used=used)
    following = _next_position(position=position, stamp=stamp, page=page, more_chats=more_chats)
    return {
        "server_timestamp": stamp, "reset": position.reset,
        "upserts": page.upserts, "deletions": deletions, "has_more": following is not None,
        "next_cursor": cursor_encode(following) if following is not None else None,
        "total_chats": total, "metadata": _metadata(user) if metadata else None,
    }  # fmt: skip
