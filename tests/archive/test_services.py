"""The archive's writes: entries and their slugs, links, pins, the guest's move, each refusal
changing nothing, and another user's rows never touched."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from accounts.models import User
from accounts.services import guest_upgrade
from archive.errors import (
    ArchiveError,
    ChatNotFound,
    EntryNotFound,
    LinkExists,
    LinkNotFound,
    PinNotFound,
)
from archive.models import ArchiveEntry, ArchiveLink, ChatPin
from archive.services import (
    chat_pin_add,
    chat_pin_remove,
    entry_create,
    entry_delete,
    entry_update,
    link_add,
    link_remove,
)
from tests.archive.helpers import chat_of, entry


def test_an_entry_takes_its_slug_from_its_title(alice: User) -> None:
    created = entry(
        alice, "  Trip to   Lisbon! ", "Flights on Friday.", ("Travel", "travel", " Plans ")
    )

    assert created.slug == "trip-to-lisbon"
    assert created.title == "Trip to Lisbon!"
    assert created.tags == ["travel", "plans"]


def test_a_taken_slug_gets_the_next_number(alice: User) -> None:
    slugs = [entry(alice, "Groceries").slug for _ in range(3)]

    assert slugs == ["groceries", "groceries-1", "groceries-2"]


def test_slugs_are_per_user(alice: User, bob: User) -> None:
    entry(alice, "Groceries")

    assert entry(bob, "Groceries").slug == "groceries"


def test_a_title_without_letters_still_gets_a_slug(alice: User) -> None:
    assert entry(alice, "!!!").slug == "entry"


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_title_all_get_their_own_slug(alice: User) -> None:
    barrier = threading.Barrier(4)
    slugs: list[str] = []
    failures: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            slugs.append(entry_create(user_id=alice.id, title="Race").slug)
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sorted(slugs) == ["race", "race-1", "race-2", "race-3"]


@pytest.mark.parametrize(
    ("title", "body", "tags", "message"),
    [
        ("   ", "", (), "needs a title"),
        ("x" * 201, "", (), "title is too long"),
        ("Fine", "x" * 100_001, (), "text is too long"),
        ("Fine", "", tuple(f"t{n}" for n in range(21)), "Too many tags"),
        ("Fine", "", ("x" * 51,), "is too long"),
    ],
)
def test_a_bad_entry_is_refused_and_nothing_is_written(
    alice: User, title: str, body: str, tags: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ArchiveError, match=message):
        entry_create(user_id=alice.id, title=title, body=body, tags=tags)

    assert not ArchiveEntry.objects.exists()


def test_an_update_changes_what_it_is_given_and_keeps_the_slug(alice: User) -> None:
    created = entry(alice, "Recipes", "Bread", ("food",))

    entry_update(entry=created, title="Family recipes", tags=["food", "family"])

    created.refresh_from_db()
    assert (created.slug, created.title, created.body, created.tags) == (
        "recipes", "Family recipes", "Bread", ["food", "family"],
    )  # fmt: skip


def test_a_bad_update_changes_nothing(alice: User) -> None:
    created = entry(alice, "Recipes", "Bread")

    with pytest.raises(ArchiveError):
        entry_update(entry=created, title="", body="Cake")

    created.refresh_from_db()
    assert (created.title, created.body) == ("Recipes", "Bread")


def test_the_search_vector_follows_every_write(alice: User) -> None:
    created = entry(alice, "Recipes", "Bread")
    entry_update(entry=created, body="Sourdough starters")

    assert ArchiveEntry.objects.filter(search="sourdough").exists()
    assert not ArchiveEntry.objects.filter(search="bread").exists()


def test_a_delete_takes_the_entrys_links_and_pins(alice: User) -> None:
    first, second = entry(alice, "First"), entry(alice, "Second")
    link_add(user_id=alice.id, source_id=first.id, target_id=second.id)
    chat_pin_add(user_id=alice.id, chat_id=chat_of(alice).id, entry_id=first.id)

    entry_delete(entry=first)

    assert list(ArchiveEntry.objects.values_list("slug", flat=True)) == ["second"]
    assert not ArchiveLink.objects.exists()
    assert not ChatPin.objects.exists()


def test_links_are_never_duplicated_nor_to_the_entry_itself(alice: User) -> None:
    first, second = entry(alice, "First"), entry(alice, "Second")
    link_add(user_id=alice.id, source_id=first.id, target_id=second.id, kind="Cites")

    with pytest.raises(LinkExists):
        link_add(user_id=alice.id, source_id=first.id, target_id=second.id, kind="cites")
    with pytest.raises(ArchiveError, match="itself"):
        link_add(user_id=alice.id, source_id=first.id, target_id=first.id)
    with pytest.raises(ArchiveError, match="kind"):
        link_add(user_id=alice.id, source_id=second.id, target_id=first.id, kind="  ")

    assert list(ArchiveLink.objects.values_list("kind", flat=True)) == ["cites"]


def test_unlinking_removes_the_links_between_two_entries_either_way(alice: User) -> None:
    first, second = entry(alice, "First"), entry(alice, "Second")
    link_add(user_id=alice.id, source_id=first.id, target_id=second.id, kind="cites")
    link_add(user_id=alice.id, source_id=second.id, target_id=first.id, kind="answers")

    assert (
        link_remove(user_id=alice.id, source_id=first.id, target_id=second.id, kind="answers") == 1
    )
    assert link_remove(user_id=alice.id, source_id=second.id, target_id=first.id) == 1
    with pytest.raises(LinkNotFound):
        link_remove(user_id=alice.id, source_id=first.id, target_id=second.id)


def test_bob_cannot_link_update_or_delete_alices_entries(alice: User, bob: User) -> None:
    alices = entry(alice, "Secret", "Alice's plan")
    bobs = entry(bob, "Mine")

    with pytest.raises(EntryNotFound):
        link_add(user_id=bob.id, source_id=bobs.id, target_id=alices.id)
    with pytest.raises(EntryNotFound):
        link_add(user_id=bob.id, source_id=alices.id, target_id=bobs.id)
    link_add(user_id=alice.id, source_id=alices.id, target_id=entry(alice, "Other").id)
    with pytest.raises(EntryNotFound):
        link_remove(user_id=bob.id, source_id=alices.id, target_id=bobs.id)

    assert ArchiveLink.objects.count() == 1
    assert ArchiveEntry.objects.get(id=alices.id).body == "Alice's plan"


def test_pins_are_unique_and_unpinning_twice_says_so(alice: User) -> None:
    chat = chat_of(alice)
    note = entry(alice, "Note")

    assert chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id) is True
    assert chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id) is False
    assert ChatPin.objects.count() == 1
    chat_pin_remove(user_id=alice.id, chat_id=chat.id, entry_id=note.id)
    with pytest.raises(PinNotFound):
        chat_pin_remove(user_id=alice.id, chat_id=chat.id, entry_id=note.id)


def test_bob_cannot_pin_to_alices_chat_nor_pin_alices_entry(alice: User, bob: User) -> None:
    alices_chat, bobs_chat = chat_of(alice), chat_of(bob)
    alices, bobs = entry(alice, "Secret"), entry(bob, "Mine")
    chat_pin_add(user_id=alice.id, chat_id=alices_chat.id, entry_id=alices.id)

    with pytest.raises(ChatNotFound):
        chat_pin_add(user_id=bob.id, chat_id=alices_chat.id, entry_id=bobs.id)
    with pytest.raises(EntryNotFound):
        chat_pin_add(user_id=bob.id, chat_id=bobs_chat.id, entry_id=alices.id)
    with pytest.raises(ChatNotFound):
        chat_pin_remove(user_id=bob.id, chat_id=alices_chat.id, entry_id=alices.id)
    with pytest.raises(ChatNotFound):
        chat_pin_add(user_id=bob.id, chat_id=uuid.uuid4(), entry_id=bobs.id)

    assert list(ChatPin.objects.values_list("chat_id", "entry_id")) == [(alices_chat.id, alices.id)]


def test_a_guests_archive_moves_to_their_account_and_the_account_keeps_its_slugs(
    guest: User, alice: User
) -> None:
    kept = entry(alice, "Notes", "Alice's notes")
    entry(alice, "Notes")  # notes-1, taken too
    guests_notes = entry(guest, "Notes", "The guest's notes")
    guests_other = entry(guest, "Notes 1")  # notes-1 for the guest: also taken by the account
    guests_third = entry(guest, "Ideas")
    link_add(user_id=guest.id, source_id=guests_notes.id, target_id=guests_third.id)
    guest_chat = chat_of(guest)
    chat_pin_add(user_id=guest.id, chat_id=guest_chat.id, entry_id=guests_notes.id)

    assert guest_upgrade(guest_id=guest.id, account=alice)

    slugs = dict(ArchiveEntry.objects.filter(user=alice).values_list("id", "slug"))
    assert slugs[kept.id] == "notes"
    assert slugs[guests_third.id] == "ideas"
    assert {slugs[guests_notes.id], slugs[guests_other.id]} == {"notes-2", "notes-3"}
    assert len(set(slugs.values())) == len(slugs) == 5
    assert ArchiveLink.objects.get().source_id == guests_notes.id
    assert ChatPin.objects.get().entry_id == guests_notes.id
    assert ChatPin.objects.get().chat.user_id == alice.id


def test_the_database_itself_refuses_a_link_to_itself_and_a_duplicate(alice: User) -> None:
    first, second = entry(alice, "First"), entry(alice, "Second")
    ArchiveLink.objects.create(source=first, target=second, kind="cites")

    for source, target in ((first, first), (first, second)):
        with pytest.raises(IntegrityError), transaction.atomic():
            ArchiveLink.objects.create(source=source, target=target, kind="cites")


def test_deleting_a_chat_takes_its_pins_and_keeps_the_entries(
    alice: User, alice_client: Client
) -> None:
    chat = chat_of(alice)
    note = entry(alice, "Note")
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id)

    response = alice_client.post(f"/c/{chat.id}/delete")  # chats' own set-based delete

    assert response.status_code == 302
    assert not ChatPin.objects.exists()
    assert ArchiveEntry.objects.get().id == note.id


def test_a_fork_starts_with_its_source_chats_pins_in_their_order(alice: User) -> None:
    from chats.fork_services import chat_fork
    from tests.chats.branching_support import conversation

    chat = chat_of(alice)
    question, _answer = conversation(chat, "Plan the trip", "Sure")
    older, newer = entry(alice, "Budget", "800 EUR"), entry(alice, "Dates", "May")
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=newer.id)
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=older.id)

    fork = chat_fork(chat=chat, message=question).chat

    pinned = list(ChatPin.objects.filter(chat=fork).order_by("created_at", "id"))
    assert [pin.entry_id for pin in pinned] == [newer.id, older.id]
    assert ChatPin.objects.filter(chat=chat).count() == 2
