"""Searching and browsing the archive: full-text ranking, tags (any or all), and keyset pages
that neither skip nor repeat an entry while entries are written between two pages."""

from __future__ import annotations

import uuid

import pytest

from accounts.models import User
from archive.models import ArchiveEntry
from archive.selectors import BadCursor, SearchPage, entries_search
from archive.services import entry_delete, entry_update
from tests.archive.helpers import entry


def _slugs(page: SearchPage) -> list[str]:
    return [found.slug for found in page.entries]


def test_a_query_finds_title_matches_before_body_matches(alice: User) -> None:
    entry(alice, "Cooking notes", "Remember the sourdough starter.")
    entry(alice, "Sourdough", "Flour, water, salt.")
    entry(alice, "Unrelated", "Nothing here.")

    page = entries_search(user=alice, query="sourdough")

    assert _slugs(page) == ["sourdough", "cooking-notes"]


def test_a_query_uses_web_search_syntax_and_stemming(alice: User) -> None:
    entry(alice, "Baking bread", "Loaves and rolls.")
    entry(alice, "Baking cakes", "Sponges.")

    assert _slugs(entries_search(user=alice, query="bake -cakes")) == ["baking-bread"]
    assert _slugs(entries_search(user=alice, query='"baking cakes"')) == ["baking-cakes"]


def test_bob_never_finds_alices_entries(alice: User, bob: User) -> None:
    entry(alice, "Secret plan", "Alice's plan")

    assert entries_search(user=bob, query="plan").entries == []
    assert entries_search(user=bob).entries == []
    assert entries_search(user=None).entries == []


def test_tags_filter_with_any_or_all_of_them(alice: User) -> None:
    entry(alice, "Both", tags=("work", "urgent"))
    entry(alice, "Work", tags=("work",))
    entry(alice, "Urgent", tags=("Urgent",))
    entry(alice, "Neither", tags=("home",))

    any_of = entries_search(user=alice, tags=["work", "URGENT"], tags_mode="any")
    all_of = entries_search(user=alice, tags=["work", "urgent"], tags_mode="all")

    assert sorted(_slugs(any_of)) == ["both", "urgent", "work"]
    assert _slugs(all_of) == ["both"]
    with pytest.raises(Exception, match="any or all"):
        entries_search(user=alice, tags=["work"], tags_mode="most")


def test_browsing_pages_newest_first_to_the_end(alice: User) -> None:
    for number in range(5):
        entry(alice, f"Entry {number}")

    first = entries_search(user=alice, limit=2)
    second = entries_search(user=alice, limit=2, after=first.next_cursor)
    third = entries_search(user=alice, limit=2, after=second.next_cursor)

    assert _slugs(first) + _slugs(second) + _slugs(third) == [f"entry-{n}" for n in (4, 3, 2, 1, 0)]
    assert third.next_cursor is None


def _all_pages(user: User, writes: list, **search: object) -> list[str]:
    """Page through with limit 2, running the next write between every two pages."""
    seen: list[str] = []
    cursor = None
    for _page in range(50):  # a cursor that does not move on fails, never hangs
        page = entries_search(user=user, limit=2, after=cursor, **search)  # type: ignore[arg-type]
        seen += _slugs(page)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
        if writes:
            writes.pop(0)()
    raise AssertionError(f"the pages never ended: {seen}")


def test_browsing_neither_skips_nor_repeats_while_entries_are_edited_created_and_deleted(
    alice: User,
) -> None:
    entries = [entry(alice, f"Entry {number}") for number in range(12)]
    newest_first = [found.slug for found in reversed(entries)]
    writes = [
        # An entry not seen yet is edited: ordered by updated_at, it would jump above the cursor.
        lambda: entry_update(entry=entries[1], body="edited"),
        # One already seen is edited: it would come round again.
        lambda: entry_update(entry=entries[11], body="edited"),
        lambda: entry(alice, "Brand new"),
        lambda: entry_delete(entry=entries[0]),
    ]

    seen = _all_pages(alice, writes)

    assert seen == [slug for slug in newest_first if slug != "entry-0"]
    assert len(seen) == len(set(seen))


def test_a_query_neither_skips_nor_repeats_while_other_entries_are_written(alice: User) -> None:
    # Ranks differ (how often the word comes), and some tie: the id orders those.
    entries = [
        entry(alice, f"Note {number}", " ".join(["comet"] * (1 + number % 4)) + " tail")
        for number in range(12)
    ]
    expected = _slugs(entries_search(user=alice, query="comet", limit=100))
    writes = [
        lambda: entry(alice, "Comet comet comet comet comet", "comet"),  # ranks above the cursor
        lambda: entry_update(entry=entries[3], tags=["sky"]),  # a tag moves nothing
        lambda: entry(alice, "Unrelated", "no match"),
        # One not seen yet is deleted: it is simply not there.
        lambda: entry_delete(entry=ArchiveEntry.objects.get(slug=expected[-1])),
    ]

    seen = _all_pages(alice, writes, query="comet")

    assert seen == expected[:-1]
    assert len(seen) == len(set(seen))


def test_a_cursor_of_the_other_mode_or_unreadable_is_refused(alice: User) -> None:
    for number in range(3):
        entry(alice, f"Comet {number}")
    browse = entries_search(user=alice, limit=1)
    ranked = entries_search(user=alice, query="comet", limit=1)
    assert browse.next_cursor and ranked.next_cursor

    for user_query, cursor in (
        ("comet", browse.next_cursor),
        ("", ranked.next_cursor),
        ("", "d|yesterday|" + str(uuid.uuid4())),
        ("", "garbage"),
        ("", "d|2026-01-01T00:00:00|" + str(uuid.uuid4())),  # no time zone
    ):
        with pytest.raises(BadCursor):
            entries_search(user=alice, query=user_query, after=cursor)


def test_an_excerpt_of_the_body_is_read_not_the_whole_body(alice: User) -> None:
    entry(alice, "Long", "x" * 5000)

    (found,) = entries_search(user=alice).entries

    assert len(found.excerpt) == 240  # type: ignore[attr-defined]
    assert "body" in found.get_deferred_fields()
    assert ArchiveEntry.objects.get().body == "x" * 5000
