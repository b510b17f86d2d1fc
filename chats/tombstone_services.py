"""Tombstones of deleted chats and messages, pruned once no cache can still need them.

A browser's cache learns what was deleted from the tombstones (`ChatDeletion`,
`MessageDeletion`) newer than its last sync. A cache older than SYNC_TOMBSTONE_RETENTION_DAYS
is told to start over (`realtime.sync`), so older tombstones serve nobody: `tombstones_prune`
deletes them. `manage.py tombstones_prune` runs it, and so does each process's reaper loop, at
most once an hour (`tombstones_prune_if_due`).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from chats.models import ChatDeletion, MessageDeletion

PRUNE_EVERY_SECONDS = 3600

# Against the database's clock, like the stamps themselves.
_PRUNE_SQL = """
WITH chats AS (
    DELETE FROM {chat_table} WHERE deleted_at < now() - make_interval(days => %(days)s)
    RETURNING 1
), messages AS (
    DELETE FROM {message_table} WHERE deleted_at < now() - make_interval(days => %(days)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM chats) + (SELECT count(*) FROM messages)
"""

_last_pruned: float | None = None  # time.monotonic() of this process's last prune


def tombstones_prune() -> int:
    """Delete the chat and message tombstones older than the retention; return how many."""
    statement = _PRUNE_SQL.format(
        chat_table=ChatDeletion._meta.db_table, message_table=MessageDeletion._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, {"days": settings.SYNC_TOMBSTONE_RETENTION_DAYS})
        (pruned,) = cursor.fetchone()
    return int(pruned)


def tombstones_prune_if_due() -> int:
    """Prune when this process has not for PRUNE_EVERY_SECONDS (the reaper calls it each round)."""
    global _last_pruned
    now = time.monotonic()
    if _last_pruned is not None and now - _last_pruned < PRUNE_EVERY_SECONDS:
        return 0
    _last_pruned = now
    return tombstones_prune()
