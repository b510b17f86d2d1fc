"""The files a message sends to a model: checked before anything is spent, linked as it is saved.

docs/attachments.md, "Sending". A send or an edit names its new files by id; regenerate, retry
and fork send the files the route already carries. Each check runs before the rate limit's
admission and before any guest row or message is written, so a refusal changes nothing: the
ids are the user's (else not found), the count and total size are within the limits, and the
model reads every kind. Linking (`MessageAttachment` rows and `first_sent_at`) is one statement
inside the send's transaction, derived from the messages' own file parts, so edits and forks
link their copies the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection

from chats.models import Attachment, Message
from chats.structure import ROUTE_BRANCHES_CTE
from models_registry.calls import CallTarget
from vero.errors import ErrorKind, VeroError

KIND_NAMES = {"image": "images", "file": "documents (PDF)", "audio": "audio"}


class AttachmentNotFound(VeroError):
    code = "attachment_not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "This attachment does not exist."


class AttachmentsRefused(VeroError):
    """Too many files, too large together, or of a kind the model cannot read."""

    code = "attachments_refused"


def file_part(attachment: Attachment) -> dict[str, Any]:
    """A message's reference to `attachment` (metadata only): what pages render, the cache
    syncs and the model's input is built from. The size measures (pixels, pages, seconds) let
    the context budget count the file without reading it."""
    part: dict[str, Any] = {
        "type": "file", "attachment_id": str(attachment.id), "name": attachment.name,
        "kind": attachment.kind, "content_type": attachment.content_type, "size": attachment.size,
    }  # fmt: skip
    for measure in ("width", "height", "pages", "duration_seconds"):
        value = getattr(attachment, measure)
        if value is not None:
            part[measure] = value
    return part


def file_parts_of(parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [part for part in parts if part.get("type") == "file"]


def _kinds_check(*, kinds: Sequence[str], target: CallTarget) -> None:
    for kind in dict.fromkeys(kinds):
        if not target.capabilities.accepts(kind):
            raise AttachmentsRefused(
                f"{target.model_id} cannot read {KIND_NAMES.get(kind, kind)}: choose a model "
                f"that can, or remove the {kind} attachments."
            )


def attachments_check(
    *,
    user_id: uuid.UUID | None,
    ids: Sequence[uuid.UUID],
    target: CallTarget,
    kept: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The file parts of a new message: `kept` (an edited version's files) then `ids`, checked.

    One statement (none without ids). `user_id` None (a guest without a row yet) owns nothing.
    Raises AttachmentNotFound for an id that is not the user's, AttachmentsRefused for the
    limits or a kind the model cannot read.
    """
    wanted = list(dict.fromkeys(ids))
    known = {part["attachment_id"] for part in kept}
    wanted = [attachment_id for attachment_id in wanted if str(attachment_id) not in known]
    if len(kept) + len(wanted) > settings.ATTACHMENTS_PER_MESSAGE:
        raise AttachmentsRefused(
            f"Attach at most {settings.ATTACHMENTS_PER_MESSAGE} files to one message."
        )
    found: dict[uuid.UUID, Attachment] = {}
    if wanted:
        if user_id is None:
            raise AttachmentNotFound()
        found = {
            row.id: row
            for row in Attachment.objects.filter(owner_id=user_id, id__in=wanted).only(
                "id", "kind", "content_type", "size", "name", "width", "height", "pages",
                "duration_seconds",
            )
        }  # fmt: skip
        if len(found) != len(wanted):
            raise AttachmentNotFound()
    parts = [dict(part) for part in kept] + [file_part(found[i]) for i in wanted]
    total = sum(int(part.get("size") or 0) for part in parts)
    if total > settings.ATTACHMENT_MESSAGE_MAX_BYTES:
        limit = settings.ATTACHMENT_MESSAGE_MAX_BYTES / (1024 * 1024)
        raise AttachmentsRefused(f"The files of one message may total at most {limit:g} MB.")
    _kinds_check(kinds=[part["kind"] for part in parts], target=target)
    return parts


# The kinds of file the route to a message carries, as far back as the model's input reads
# (CONTEXT_MAX_MESSAGES): one statement, bounded like `context_build`'s.
_ROUTE_KINDS_SQL = (
    ROUTE_BRANCHES_CTE  # noqa: S608  (constant text: no input goes into it)
    + """
, messages AS (
    SELECT m.parts
    FROM route r
    CROSS JOIN LATERAL (
        SELECT m.parts, m.seq FROM chats_message m
        WHERE m.branch_id = r.id AND m.seq <= r.last_seq
        ORDER BY m.seq DESC LIMIT %(limit)s
    ) m
    ORDER BY r.depth DESC, m.seq DESC
    LIMIT %(limit)s
)
SELECT DISTINCT part->>'kind'
FROM messages, jsonb_array_elements(messages.parts) AS part
WHERE part->>'type' = 'file'
"""
)


def route_files_check(*, message: Message, target: CallTarget, inclusive: bool) -> None:
    """Refuse (AttachmentsRefused) when the route an answer reads carries a file of a kind
    the model cannot read: the route to `message`, with it when `inclusive` (a question
    answered again or edited into a fork), else before it (an answer replaced)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ROUTE_KINDS_SQL,
            {
                "message": message.id, "chat": message.chat_id, "before": 0 if inclusive else 1,
                "limit": settings.CONTEXT_MAX_MESSAGES,
            },
        )  # fmt: skip
        kinds = sorted(row[0] for row in cursor.fetchall() if row[0])
    _kinds_check(kinds=kinds, target=target)


# Links the messages to the attachments their file parts name (those that still exist) and
# marks them sent, in one statement.
_LINK_SQL = """
WITH linked AS (
    INSERT INTO chats_messageattachment (message_id, attachment_id)
    SELECT DISTINCT m.id, a.id
    FROM chats_message m
    CROSS JOIN LATERAL jsonb_array_elements(m.parts) AS part
    -- Parts written by hand (old data, tests) may name ids that are not UUIDs: never linked.
    JOIN chats_attachment a ON a.id = CASE
        WHEN part->>'attachment_id' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
        THEN (part->>'attachment_id')::uuid END
    WHERE {messages} AND part->>'type' = 'file'
    ON CONFLICT DO NOTHING
    RETURNING attachment_id
)
UPDATE chats_attachment SET first_sent_at = now()
WHERE id IN (SELECT attachment_id FROM linked) AND first_sent_at IS NULL
"""


_LINK_MESSAGES_SQL = _LINK_SQL.replace("{messages}", "m.id = ANY(%(messages)s)")
_LINK_CHAT_SQL = _LINK_SQL.replace("{messages}", "m.chat_id = %(chat)s")


def message_files_link(*, message_ids: Sequence[uuid.UUID]) -> None:
    """Record that these (saved) messages refer to the attachments of their file parts."""
    with connection.cursor() as cursor:
        cursor.execute(_LINK_MESSAGES_SQL, {"messages": list(message_ids)})


def chat_files_link(*, chat_id: uuid.UUID) -> None:
    """The same for every message of a chat (a fork's copies: references, never bytes)."""
    with connection.cursor() as cursor:
        cursor.execute(_LINK_CHAT_SQL, {"chat": chat_id})
