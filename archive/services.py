"""Writes on the archive: entries, links between them, pins to chats, the guest's move.

Every write checks that what it touches is the acting user's (another user's entry or chat is
not found), changes nothing when it refuses, and publishes its event inside its transaction:
`archive.updated` / `archive.deleted` for entries (and their links), `chat.updated` for a
chat's pins. A new entry's slug comes from its title; a taken one gets `-1`, `-2`, …, and two
creates racing for the same slug are settled by the unique constraint: the loser retries.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, connection, transaction
from django.utils.text import slugify

from archive.errors import (
    ArchiveError,
    ChatNotFound,
    EntryNotFound,
    LinkExists,
    LinkNotFound,
    PinNotFound,
    SlugsExhausted,
)
from archive.models import (
    SLUG_MAX_LENGTH,
    TAG_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    ArchiveEntry,
    ArchiveLink,
    ChatPin,
)
from archive.selectors import (
    MEMORY_ROWS_SQL,
    PinnedMemory,
    chat_owned,
    memory_text,
    tags_clean,
)
from realtime.events import publish

BODY_MAX_LENGTH = 100_000
TAGS_MAX = 20
KIND_MAX_LENGTH = 50
PINS_STAGED_MAX = 50
SLUG_ATTEMPTS = 8
# Room for the `-N` a taken slug gets.
_SLUG_BASE_LENGTH = SLUG_MAX_LENGTH - 8
_SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


# ---------------------------------------------------------------------------------------------
# Input


def _title_checked(title: str) -> str:
    text = " ".join(title.split())
    if not text:
        raise ArchiveError("An entry needs a title.")
    if len(text) > TITLE_MAX_LENGTH:
        raise ArchiveError(f"The title is too long: at most {TITLE_MAX_LENGTH} characters.")
    return text


def _body_checked(body: str) -> str:
    if len(body) > BODY_MAX_LENGTH:
        raise ArchiveError(f"The text is too long: at most {BODY_MAX_LENGTH:,} characters.")
    return body


def _tags_checked(tags: Iterable[str]) -> list[str]:
    cleaned = tags_clean(list(tags))
    if len(cleaned) > TAGS_MAX:
        raise ArchiveError(f"Too many tags: at most {TAGS_MAX}.")
    long = [tag for tag in cleaned if len(tag) > TAG_MAX_LENGTH]
    if long:
        raise ArchiveError(f"The tag {long[0][:20]!r}… is too long: at most {TAG_MAX_LENGTH}.")
    return cleaned


def _kind_checked(kind: str) -> str:
    text = " ".join(kind.split()).lower()
    if not text:
        raise ArchiveError("A link needs a kind (for example “related”).")
    if len(text) > KIND_MAX_LENGTH:
        raise ArchiveError(f"The link's kind is too long: at most {KIND_MAX_LENGTH} characters.")
    return text


def slug_base(title: str) -> str:
    """The slug a title gives before any `-N`: lower-case words joined by hyphens."""
    base = slugify(title)[:_SLUG_BASE_LENGTH].strip("-")
    return base or "entry"


def _slug_free(*, user_ids: Sequence[uuid.UUID], base: str) -> str:
    """`base`, or `base-N` with the smallest N that none of `user_ids` has taken."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT slug FROM archive_archiveentry WHERE user_id = ANY(%s) "
            "AND (slug = %s OR slug LIKE %s)",
            [list(user_ids), base, base.replace("_", r"\_").replace("%", r"\%") + "-%"],
        )
        taken = {row[0] for row in cursor.fetchall()}
    if base not in taken:
        return base
    number = 1
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


# ---------------------------------------------------------------------------------------------
# Entries


def entry_create(
    *, user_id: uuid.UUID, title: str, body: str = "", tags: Iterable[str] = ()
) -> ArchiveEntry:
    """Create an entry; its slug comes from the title (`-1`, `-2`, … when taken)."""
    title = _title_checked(title)
    body = _body_checked(body)
    cleaned_tags = _tags_checked(tags)
    base = slug_base(title)
    with transaction.atomic():
        for _attempt in range(SLUG_ATTEMPTS):
            entry = ArchiveEntry(
                user_id=user_id,
                title=title,
                body=body,
                tags=cleaned_tags,
                slug=_slug_free(user_ids=[user_id], base=base),
            )
            try:
                # A savepoint: a concurrent create that took the slug first fails this insert
                # alone, and the next attempt sees its slug.
                with transaction.atomic():
                    entry.save(force_insert=True)
            except IntegrityError as error:
                if "archive_entry_user_slug_unique" not in str(error):
                    raise
                continue
            publish(user_id=user_id, kind="archive.updated", entry_id=entry.id)
            return entry
    raise SlugsExhausted()


def entry_update(
    *,
    entry: ArchiveEntry,
    title: str | None = None,
    body: str | None = None,
    tags: Iterable[str] | None = None,
) -> ArchiveEntry:
    """Change an entry's title, text or tags (what is None stays). The slug stays: links,
    pins and the model's notes refer to it."""
    fields = ["updated_at"]
    if title is not None:
        entry.title = _title_checked(title)
        fields.append("title")
    if body is not None:
        entry.body = _body_checked(body)
        fields.append("body")
    if tags is not None:
        entry.tags = _tags_checked(tags)
        fields.append("tags")
    with transaction.atomic():
        updated = ArchiveEntry.objects.filter(id=entry.id, user_id=entry.user_id).exists()
        if not updated:
            raise EntryNotFound()
        entry.save(update_fields=fields)
        publish(user_id=entry.user_id, kind="archive.updated", entry_id=entry.id)
    return entry


def entry_delete(*, entry: ArchiveEntry) -> None:
    """Delete an entry with its links and pins; the chats it was pinned to are told."""
    with transaction.atomic():
        chat_ids = list(ChatPin.objects.filter(entry_id=entry.id).values_list("chat_id", flat=True))
        deleted, _ = ArchiveEntry.objects.filter(id=entry.id, user_id=entry.user_id).delete()
        if not deleted:
            raise EntryNotFound()
        publish(user_id=entry.user_id, kind="archive.deleted", entry_id=entry.id)
        for chat_id in chat_ids:
            publish(user_id=entry.user_id, kind="chat.updated", chat_id=chat_id)


# ---------------------------------------------------------------------------------------------
# Links


def _entries_of(*, user_id: uuid.UUID, entry_ids: Sequence[uuid.UUID]) -> None:
    """EntryNotFound unless every entry is the user's."""
    found = ArchiveEntry.objects.filter(user_id=user_id, id__in=set(entry_ids)).count()
    if found != len(set(entry_ids)):
        raise EntryNotFound()


def link_add(
    *,
    user_id: uuid.UUID,
    source_id: uuid.UUID,
    target_id: uuid.UUID,
    kind: str = "related",
    bidirectional: bool = True,
) -> ArchiveLink:
    """Link two of the user's entries; never an entry to itself, never the same link twice."""
    kind = _kind_checked(kind)
    if source_id == target_id:
        raise ArchiveError("An entry cannot be linked to itself.")
    with transaction.atomic():
        _entries_of(user_id=user_id, entry_ids=[source_id, target_id])
        link = ArchiveLink(
            source_id=source_id, target_id=target_id, kind=kind, bidirectional=bidirectional
        )
        try:
            with transaction.atomic():
                link.save(force_insert=True)
        except IntegrityError as error:
            raise LinkExists() from error
        publish(user_id=user_id, kind="archive.updated", entry_id=source_id)
        publish(user_id=user_id, kind="archive.updated", entry_id=target_id)
    return link


def link_remove(
    *,
    user_id: uuid.UUID,
    source_id: uuid.UUID,
    target_id: uuid.UUID,
    kind: str | None = None,
) -> int:
    """Remove the links between two of the user's entries (either way; of `kind` only when
    given). Returns how many; LinkNotFound when there were none."""
    with transaction.atomic():
        _entries_of(user_id=user_id, entry_ids=list({source_id, target_id}))
        links = ArchiveLink.objects.filter(source_id=source_id, target_id=target_id) | (
            ArchiveLink.objects.filter(source_id=target_id, target_id=source_id)
        )
        if kind is not None:
            links = links.filter(kind=_kind_checked(kind))
        removed, _ = links.delete()
        if not removed:
            raise LinkNotFound()
        publish(user_id=user_id, kind="archive.updated", entry_id=source_id)
        publish(user_id=user_id, kind="archive.updated", entry_id=target_id)
    return removed


def link_remove_by_id(*, user_id: uuid.UUID, entry_id: uuid.UUID, link_id: int) -> None:
    """Remove one link of the user's entry (from either end), as the entry's page shows it."""
    link = (
        ArchiveLink.objects.filter(id=link_id, source__user_id=user_id)
        .filter(source_id=entry_id)
        .first()
    ) or ArchiveLink.objects.filter(id=link_id, target__user_id=user_id, target_id=entry_id).first()
    if link is None:
        raise LinkNotFound()
    link_remove(user_id=user_id, source_id=link.source_id, target_id=link.target_id, kind=link.kind)


# ---------------------------------------------------------------------------------------------
# Pins


def chat_pin_add(*, user_id: uuid.UUID, chat_id: uuid.UUID, entry_id: uuid.UUID) -> bool:
    """Pin the user's entry to the user's chat; False when it already was (nothing changes)."""
    with transaction.atomic():
        if not chat_owned(user_id=user_id, chat_id=chat_id):
            raise ChatNotFound()
        _entries_of(user_id=user_id, entry_ids=[entry_id])
        _, created = ChatPin.objects.get_or_create(chat_id=chat_id, entry_id=entry_id)
        if created:
            publish(user_id=user_id, kind="chat.updated", chat_id=chat_id)
    return created


def chat_pin_remove(*, user_id: uuid.UUID, chat_id: uuid.UUID, entry_id: uuid.UUID) -> None:
    """Unpin an entry from the user's chat; PinNotFound when it was not pinned."""
    with transaction.atomic():
        if not chat_owned(user_id=user_id, chat_id=chat_id):
            raise ChatNotFound()
        removed, _ = ChatPin.objects.filter(
            chat_id=chat_id, entry_id=entry_id, entry__user_id=user_id
        ).delete()
        if not removed:
            raise PinNotFound()
        publish(user_id=user_id, kind="chat.updated", chat_id=chat_id)


# The pins a new chat's first send staged, inserted in the order they were staged (the user's
# entries only, each once), and the chat's pinned memory read from them in the same statement.
_PINS_STAGE_HEAD = """
WITH staged AS (
    SELECT e.id AS entry_id, min(s.position) AS position
    FROM unnest(%(entries)s::uuid[]) WITH ORDINALITY AS s(id, position)
    JOIN archive_archiveentry e ON e.id = s.id AND e.user_id = %(user)s
    GROUP BY e.id
), pins AS (
    INSERT INTO archive_chatpin (chat_id, entry_id, created_at)
    SELECT %(chat)s, entry_id, now() FROM staged ORDER BY position
    ON CONFLICT DO NOTHING
    RETURNING id, entry_id, created_at
), """
_PINS_STAGE_SQL = _PINS_STAGE_HEAD + MEMORY_ROWS_SQL.format(pins="pins")


def chat_pins_stage(
    *, user_id: uuid.UUID, chat_id: uuid.UUID, entry_ids: Sequence[uuid.UUID], limit: int
) -> PinnedMemory:
    """Pin the entries staged on a new chat's page, inside the send that creates the chat.

    Ids that are not the user's are ignored. Returns the chat's pinned memory, read by the
    same statement, so the first answer's system prompt costs no statement more; no ids, no
    statement. The chat's `chat.created` event, in the same transaction, announces the pins.
    """
    if not entry_ids:
        return PinnedMemory(text=None)
    with connection.cursor() as cursor:
        cursor.execute(
            _PINS_STAGE_SQL,
            {
                "entries": list(entry_ids)[:PINS_STAGED_MAX],
                "user": user_id,
                "chat": chat_id,
                "limit": limit,
            },
        )
        rows = cursor.fetchall()
    return PinnedMemory(text=memory_text(rows, limit=limit))


# A fork starts with its source's pins, oldest first as there (both chats are one user's).
_PINS_COPY_SQL = """
INSERT INTO archive_chatpin (chat_id, entry_id, created_at)
SELECT %(to)s, entry_id, created_at FROM archive_chatpin
WHERE chat_id = %(from)s
ORDER BY created_at, id
ON CONFLICT DO NOTHING
"""


def chat_pins_copy(*, from_chat_id: uuid.UUID, to_chat_id: uuid.UUID) -> int:
    """Pin to a fork what its source chat pins (call inside the fork's transaction, which
    announces the new chat); return how many."""
    with connection.cursor() as cursor:
        cursor.execute(_PINS_COPY_SQL, {"from": from_chat_id, "to": to_chat_id})
        return cursor.rowcount


# ---------------------------------------------------------------------------------------------
# The guest's move


def archive_guest_move(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
    """Guest upgrade: the guest's entries (with their links and pins) become the account's.

    The account keeps its slugs; a guest entry whose slug the account has takes the next slug
    free for both of them.
    """
    conflicting = ArchiveEntry.objects.filter(user_id=guest_id).filter(
        slug__in=ArchiveEntry.objects.filter(user_id=account_id).values("slug")
    )
    for entry in conflicting.only("id", "slug"):
        base = re.sub(r"-\d+$", "", entry.slug) or entry.slug
        if not _SLUG_PATTERN.match(base):
            base = slug_base(base)
        new_slug = _slug_free(user_ids=[guest_id, account_id], base=base)
        ArchiveEntry.objects.filter(id=entry.id).update(slug=new_slug)
    moved = list(ArchiveEntry.objects.filter(user_id=guest_id).values_list("id", flat=True))
    ArchiveEntry.objects.filter(user_id=guest_id).update(user_id=account_id)
    for entry_id in moved:
        publish(user_id=account_id, kind="archive.updated", entry_id=entry_id)
