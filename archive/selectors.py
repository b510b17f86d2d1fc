"""Reads of the archive: one entry (404 for others), search and browse pages, a chat's pins,
and the pinned memory a chat's system prompt carries.

Pages are keyset pages over an order no write changes, so a reader paging while entries are
written neither skips nor repeats one: browsing goes newest first on (created_at, id), both
fixed when the entry is made (an order on updated_at would move an edited entry above the
cursor, and the reader would never see it); a query goes by (rank, id). A query's rank depends
on the entry's own text, so only an entry whose own title or body is edited between two pages
may move; creates, deletes, tag changes and every other entry's edits move nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F, FloatField, Q, QuerySet
from django.db.models.functions import Cast, Left
from django.http import Http404

from accounts.models import User
from archive.errors import ArchiveError, ChatNotFound, EntryNotFound
from archive.models import SEARCH_CONFIG, ArchiveEntry, ArchiveLink, ChatPin

EXCERPT_LENGTH = 240
TAG_MODES = ("any", "all")


class BadCursor(ArchiveError):
    code = "archive_bad_cursor"
    default_message = "This page link is not valid; start the search again."


# ---------------------------------------------------------------------------------------------
# One entry


def entry_get_for_user(*, user: User | None, entry_id: uuid.UUID) -> ArchiveEntry:
    """The user's entry, or 404 (also for another user's entry and a guest without a row)."""
    entry = None if user is None else ArchiveEntry.objects.filter(id=entry_id, user=user).first()
    if entry is None:
        raise Http404("No such archive entry.")
    return entry


def entry_find(
    *, user_id: uuid.UUID, entry_id: uuid.UUID | None = None, slug: str = ""
) -> ArchiveEntry:
    """The user's entry by id or slug, or EntryNotFound (services and tools: no HTTP here)."""
    entries = ArchiveEntry.objects.filter(user_id=user_id)
    entry = (
        entries.filter(id=entry_id).first()
        if entry_id is not None
        else entries.filter(slug=slug).first()
    )
    if entry is None:
        raise EntryNotFound(
            f"There is no archive entry {slug!r}." if slug else EntryNotFound.default_message
        )
    return entry


@dataclass(frozen=True)
class EntryLink:
    """A link as one entry sees it: the other entry, the kind, and which way it points."""

    link_id: int
    kind: str
    outgoing: bool
    bidirectional: bool
    other_id: uuid.UUID
    other_slug: str
    other_title: str


def entry_links(*, entry: ArchiveEntry) -> list[EntryLink]:
    """Links from the entry and to it, in one query; the oldest first."""
    links = (
        ArchiveLink.objects.filter(Q(source=entry) | Q(target=entry))
        .select_related("source", "target")
        .only(
            "id",
            "kind",
            "bidirectional",
            "source_id",
            "target_id",
            "source__slug",
            "source__title",
            "target__slug",
            "target__title",
        )
        .order_by("created_at", "id")
    )
    found = []
    for link in links:
        outgoing = link.source_id == entry.id
        other = link.target if outgoing else link.source
        found.append(
            EntryLink(
                link_id=link.id,
                kind=link.kind,
                outgoing=outgoing,
                bidirectional=link.bidirectional,
                other_id=other.id,
                other_slug=other.slug,
                other_title=other.title,
            )
        )
    return found


# ---------------------------------------------------------------------------------------------
# Search and browse


@dataclass(frozen=True)
class SearchPage:
    entries: list[ArchiveEntry]  # `excerpt` annotated; `rank` too when there is a query
    next_cursor: str | None


def _cursor_parse(cursor: str, *, ranked: bool) -> tuple[Any, uuid.UUID]:
    """(rank or created_at, id) from a page's cursor; BadCursor for anything else."""
    try:
        mode, key, entry_id = cursor.split("|")
        if mode != ("r" if ranked else "d"):
            raise ValueError(mode)
        value: Any = float(key) if ranked else datetime.fromisoformat(key)
        if not ranked and value.tzinfo is None:
            raise ValueError(key)
        return value, uuid.UUID(entry_id)
    except ValueError as error:
        raise BadCursor() from error


def _cursor_make(entry: ArchiveEntry, *, ranked: bool) -> str:
    # repr() of the rank (a double) reads back to the same value exactly.
    key = repr(entry.rank) if ranked else entry.created_at.isoformat()  # type: ignore[attr-defined]
    return f"{'r' if ranked else 'd'}|{key}|{entry.id}"


def tags_clean(tags: Sequence[str]) -> list[str]:
    """Tags as they are stored: trimmed, single-spaced, lower case, each once, in order."""
    cleaned: list[str] = []
    for tag in tags:
        text = " ".join(str(tag).split()).lower()
        if text and text not in cleaned:
            cleaned.append(text)
    return cleaned


def entries_search(
    *,
    user: User | None,
    query: str = "",
    tags: Sequence[str] = (),
    tags_mode: str = "any",
    after: str | None = None,
    limit: int | None = None,
) -> SearchPage:
    """One page of the user's entries: matching `query` best first (PostgreSQL full text,
    `websearch_to_tsquery`), else newest first; with any or all of `tags`.

    `after` is the previous page's `next_cursor`. BadCursor for a cursor of another mode or
    an unreadable one, ArchiveError for an unknown `tags_mode`.
    """
    if tags_mode not in TAG_MODES:
        raise ArchiveError("Choose whether entries need any or all of the tags.")
    size = limit or int(settings.ARCHIVE_PAGE_SIZE)
    if user is None:
        return SearchPage(entries=[], next_cursor=None)
    entries: QuerySet[ArchiveEntry] = (
        ArchiveEntry.objects.filter(user=user)
        .defer("body", "search")
        .annotate(excerpt=Left("body", EXCERPT_LENGTH))
    )
    wanted = tags_clean(tags)
    if wanted:
        lookup = "tags__overlap" if tags_mode == "any" else "tags__contains"
        entries = entries.filter(**{lookup: wanted})
    ranked = bool(query.strip())
    if ranked:
        parsed = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
        entries = (
            entries.filter(search=parsed)
            # As a double: a float4 reaches Python rounded to 8 digits, and a cursor holding
            # that value would no longer equal the rank it came from.
            .annotate(rank=Cast(SearchRank(F("search"), parsed), FloatField()))
            .order_by("-rank", "-id")
        )
    else:
        entries = entries.order_by("-created_at", "-id")
    if after:
        key, entry_id = _cursor_parse(after, ranked=ranked)
        field = "rank" if ranked else "created_at"
        entries = entries.filter(Q(**{f"{field}__lt": key}) | Q(**{field: key, "id__lt": entry_id}))
    page = list(entries[: size + 1])
    more = len(page) > size
    page = page[:size]
    return SearchPage(
        entries=page, next_cursor=_cursor_make(page[-1], ranked=ranked) if more else None
    )


# The tags offered as filters come from the user's newest entries, not all of them: counting
# the tags of 100,000 entries would cost every visit of the archive page a full scan.
TAGS_SAMPLED_ENTRIES = 500


def tags_for_user(*, user: User | None, limit: int = 50) -> list[str]:
    """The tags of the user's newest entries, most used first (for the page's filters)."""
    if user is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tag FROM (SELECT tags FROM archive_archiveentry WHERE user_id = %s "
            "ORDER BY created_at DESC, id DESC LIMIT %s) AS newest, unnest(newest.tags) AS tag "
            "GROUP BY tag ORDER BY count(*) DESC, tag LIMIT %s",
            [user.id, TAGS_SAMPLED_ENTRIES, limit],
        )
        return [row[0] for row in cursor.fetchall()]


# ---------------------------------------------------------------------------------------------
# Chats' pins


def chat_owned(*, user_id: uuid.UUID, chat_id: uuid.UUID) -> bool:
    """Whether the chat is the user's (looked up by name: the archive never imports chats)."""
    chat_model = apps.get_model("chats", "Chat")
    return bool(chat_model.objects.filter(id=chat_id, user_id=user_id).exists())


def chat_pins_for_user(*, user: User | None, chat_id: uuid.UUID) -> list[ArchiveEntry]:
    """The entries pinned to the user's chat, oldest pin first; ChatNotFound for others."""
    if user is None or not chat_owned(user_id=user.id, chat_id=chat_id):
        raise ChatNotFound()
    pins = (
        ChatPin.objects.filter(chat_id=chat_id)
        .select_related("entry")
        .defer("entry__body", "entry__search")
    )
    return [pin.entry for pin in pins.order_by("created_at", "id")]


# ---------------------------------------------------------------------------------------------
# Pinned memory


@dataclass(frozen=True)
class PinnedMemory:
    """A chat's pinned memory as read: the system prompt's section, or None (nothing pinned)."""

    text: str | None


# The rows of the section in one statement, from a set of pins `{pins}` (id, entry_id,
# created_at): each pinned entry's slug and title, and of its body only what the budget still
# allows (the bodies before it are summed in a window), so a chat with large pins reads at most
# the budget's worth of text.
MEMORY_ROWS_SQL = """
rows AS (
    SELECT e.slug, e.title, e.body, p.created_at, p.id,
           coalesce(sum(length(e.body)) OVER (
               ORDER BY p.created_at, p.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ), 0) AS before
    FROM {pins} p JOIN archive_archiveentry e ON e.id = p.entry_id
)
SELECT slug, title,
       CASE WHEN before < %(limit)s THEN left(body, (%(limit)s - before)::int) ELSE '' END,
       length(body), before
FROM rows ORDER BY created_at, id
"""

_PINNED_MEMORY_SQL = (
    "WITH pins AS (SELECT id, entry_id, created_at FROM archive_chatpin WHERE chat_id = %(chat)s), "  # noqa: S608  (constant text)
    + MEMORY_ROWS_SQL.format(pins="pins")
)

MEMORY_HEADING = "Pinned memory"


def memory_text(rows: Sequence[tuple[str, str, str, int, int]], *, limit: int) -> str | None:
    """The section from `MEMORY_ROWS_SQL`'s rows: every entry whole while the budget lasts, the
    one that does not fit cut with a visible marker, the rest listed by slug and title."""
    if not rows:
        return None
    sections = [
        f"{MEMORY_HEADING}\n"
        "Archive entries the user pinned to this chat, oldest pin first. Treat them as notes to "
        "rely on; read a whole entry with read_archive."
    ]
    left_out: list[str] = []
    for slug, title, body, length, before in rows:
        if before >= limit:
            left_out.append(f"- {slug}: {title}")
            continue
        section = f"## {title} (slug: {slug})\n{body}"
        if len(body) < length:
            section += (
                f"\n[… cut: {len(body):,} of {length:,} characters shown, over the pinned "
                f"memory limit of {limit:,}; read_archive slug={slug!r} has the rest]"
            )
        sections.append(section)
    if left_out:
        sections.append(
            "Also pinned, left out over the pinned memory limit (read them with read_archive):\n"
            + "\n".join(left_out)
        )
    return "\n\n".join(sections)


def pinned_memory(*, chat_id: uuid.UUID, limit: int | None = None) -> str | None:
    """The pinned memory section of the chat's system prompt, read in one statement."""
    budget = int(settings.PINNED_MEMORY_CHAR_LIMIT) if limit is None else limit
    with connection.cursor() as cursor:
        cursor.execute(_PINNED_MEMORY_SQL, {"chat": chat_id, "limit": budget})
        rows = cursor.fetchall()
    return memory_text(rows, limit=budget)
