"""Publish a change to a user's data: NOTIFY inside the writer's transaction, sent on commit.

Services call `publish` only; each ASGI process listens on the channel and forwards events to
its own sockets of that user (`realtime.listener`). Payloads are small: ids, the kind of change,
the tab that caused it (`origin`, see `realtime.origin`) and its version `at`, never content.
`at` is added by PostgreSQL when the event is queued: the writing transaction's clock, which
is also the stamp its writes gave the chat's `updated_at` (docs/realtime.md).

Each kind's payload has a declared schema (the TypedDicts below, collected in `EVENT_SCHEMAS`),
as Zulip declares its events: a listener can rely on the keys a kind carries, and
`event_payload` refuses a payload that does not match its kind, so a publisher that sends a
key its kind does not have (or leaves out one it must have) fails in its tests, not in a
reader's browser.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypedDict

import orjson
from django.db import connection

from realtime.origin import origin_get

CHANNEL = "vero_events"

EventKind = Literal[
    "chat.created",
    "chat.updated",
    "chat.deleted",
    "message.created",
    "message.updated",
    "tree.changed",
    "archive.updated",
    "archive.deleted",
]


# Every value is a string: ids travel as their canonical UUID text. Optional keys are declared
# in `total=False` subclasses, which keeps the required/optional split readable at run time.


class _EventBase(TypedDict):
    user: str
    kind: EventKind
    chat: str


class _ChatEvent(_EventBase, total=False):
    # The tab whose request caused the write; absent when no tab did (generation, reaper).
    origin: str
    # The version: the writing transaction's clock, added by PostgreSQL as the event is queued
    # (`NOTIFY_SQL`), so every delivered event has it and no payload built here does.
    at: str


class _MessageEvent(_ChatEvent):
    message: str


class ChatCreatedEvent(_ChatEvent, total=False):
    """A chat appeared in the user's list (created, forked, or moved in from their guest)."""

    # The answer being generated, when a send created the chat with its first turn.
    message: str


class ChatUpdatedEvent(_ChatEvent):
    """A chat's title changed (renamed, or titled after its first answer)."""


class ChatDeletedEvent(_ChatEvent):
    """A chat and its whole tree are gone."""


class MessageCreatedEvent(_MessageEvent):
    """A send added a turn; `message` is its answer, generated from now on."""


class MessageUpdatedEvent(_MessageEvent):
    """A message changed in place: an answer ended, stopped or was interrupted, or was edited."""


class TreeChangedEvent(_ChatEvent, total=False):
    """The tree or its shown route changed: a version, a selection, a regeneration, a delete."""

    # The message the change is about (the new version or the one now shown); a delete has none.
    message: str


class _UserEventBase(TypedDict):
    user: str
    kind: EventKind


class _UserEvent(_UserEventBase, total=False):
    # As in chat events: the tab that caused the write, and the version PostgreSQL adds.
    origin: str
    at: str


class ArchiveUpdatedEvent(_UserEvent):
    """An archive entry was created or changed (its text, tags or links)."""

    entry: str


class ArchiveDeletedEvent(_UserEvent):
    """An archive entry is gone, with its links and pins."""

    entry: str


EVENT_SCHEMAS: dict[str, type[Mapping[str, object]]] = {
    "chat.created": ChatCreatedEvent,
    "chat.updated": ChatUpdatedEvent,
    "chat.deleted": ChatDeletedEvent,
    "message.created": MessageCreatedEvent,
    "message.updated": MessageUpdatedEvent,
    "tree.changed": TreeChangedEvent,
    "archive.updated": ArchiveUpdatedEvent,
    "archive.deleted": ArchiveDeletedEvent,
}


class EventSchemaError(TypeError):
    """A payload that does not match its kind's schema: a bug in the publisher, never input."""


@dataclass(frozen=True)
class EventSchema:
    """The keys a kind's payload must carry and the ones it may carry."""

    required: frozenset[str]
    optional: frozenset[str]


def event_schema(kind: str) -> EventSchema:
    """The schema of `kind`; an unknown kind is a programming error."""
    typed = EVENT_SCHEMAS.get(kind)
    if typed is None:
        raise EventSchemaError(f"{kind!r} is not an event kind")
    # TypedDict classes carry these at run time; typeshed's Mapping does not declare them.
    required: frozenset[str] = typed.__required_keys__  # type: ignore[attr-defined]
    optional: frozenset[str] = typed.__optional_keys__  # type: ignore[attr-defined]
    return EventSchema(required=required, optional=optional)


def event_check(payload: Mapping[str, object]) -> None:
    """Raise `EventSchemaError` unless `payload` carries exactly what its kind declares."""
    kind = payload.get("kind")
    schema = event_schema(str(kind))
    keys = payload.keys()
    missing = schema.required - keys
    unknown = keys - schema.required - schema.optional
    if missing or unknown:
        raise EventSchemaError(
            f"{kind} event: missing {sorted(missing)}, not in its schema {sorted(unknown)}"
        )
    not_text = [key for key, value in payload.items() if not isinstance(value, str)]
    if not_text:
        raise EventSchemaError(f"{kind} event: {sorted(not_text)} must be strings")


# The NOTIFY of a payload from `event_payload`, for a writer that folds it into a statement:
# PostgreSQL adds the transaction's clock as the event's version (`at`).
NOTIFY_SQL = "pg_notify(%(channel)s, (%(payload)s::jsonb || jsonb_build_object('at', now()))::text)"
NOTIFY_SQL_POSITIONAL = "pg_notify(%s, (%s::jsonb || jsonb_build_object('at', now()))::text)"


def event_payload(
    *,
    user_id: uuid.UUID,
    kind: EventKind,
    chat_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    entry_id: uuid.UUID | None = None,
) -> str:
    """The NOTIFY payload of one event (for a writer that folds `pg_notify` into a statement)."""
    payload: dict[str, str] = {"user": str(user_id), "kind": kind}
    if chat_id is not None:
        payload["chat"] = str(chat_id)
    if message_id is not None:
        payload["message"] = str(message_id)
    if entry_id is not None:
        payload["entry"] = str(entry_id)
    origin = origin_get()
    if origin is not None:
        payload["origin"] = origin
    event_check(payload)
    return orjson.dumps(payload).decode()


def publish(
    *,
    user_id: uuid.UUID,
    kind: EventKind,
    chat_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    entry_id: uuid.UUID | None = None,
) -> None:
    """Queue one event for the user's open tabs; PostgreSQL delivers it when the write commits."""
    payload = event_payload(
        user_id=user_id, kind=kind, chat_id=chat_id, message_id=message_id, entry_id=entry_id
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {NOTIFY_SQL}", {"channel": CHANNEL, "payload": payload})
