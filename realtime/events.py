"""Publish a change to a user's data: NOTIFY inside the writer's transaction, sent on commit.

Services call `publish` only; each ASGI process listens on the channel and forwards events to
the user's sockets (the listener comes with the realtime issue). Payloads are small: ids and
the kind of change, never content.
"""

from __future__ import annotations

import uuid
from typing import Literal

import orjson
from django.db import connection

CHANNEL = "vero_events"

EventKind = Literal[
    "chat.created",
    "chat.updated",
    "chat.deleted",
    "message.created",
    "message.updated",
    "tree.changed",
]


def event_payload(
    *,
    user_id: uuid.UUID,
    kind: EventKind,
    chat_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
) -> str:
    """The NOTIFY payload of one event (for a writer that folds `pg_notify` into a statement)."""
    payload: dict[str, str] = {"user": str(user_id), "kind": kind}
    if chat_id is not None:
        payload["chat"] = str(chat_id)
    if message_id is not None:
        payload["message"] = str(message_id)
    return orjson.dumps(payload).decode()


def publish(
    *,
    user_id: uuid.UUID,
    kind: EventKind,
    chat_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
) -> None:
    """Queue one event for the user's open tabs; PostgreSQL delivers it when the write commits."""
    payload = event_payload(user_id=user_id, kind=kind, chat_id=chat_id, message_id=message_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
