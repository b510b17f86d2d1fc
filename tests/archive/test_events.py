"""Every archive write publishes its event when it commits: entries as `archive.updated` /
`archive.deleted` with the entry's id, a chat's pins as `chat.updated`; a refused write none."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from accounts.services import guest_upgrade
from archive.errors import LinkExists
from archive.services import (
    chat_pin_add,
    chat_pin_remove,
    entry_delete,
    entry_update,
    link_add,
    link_remove,
)
from realtime.events import event_check
from tests.archive.helpers import chat_of, entry
from tests.helpers import EventListener, events_listen

pytestmark = pytest.mark.django_db(transaction=True)


def _received(listener: EventListener) -> list[tuple[str, str, str]]:
    """(kind, user, the entry or chat) of each delivered event, checked against its schema."""
    found = []
    for payload in listener.received(timeout=0.3):
        event_check(payload)
        found.append(_key(payload))
    return found


def _key(payload: dict[str, Any]) -> tuple[str, str, str]:
    return payload["kind"], payload["user"], payload.get("entry") or payload["chat"]


def test_creating_updating_and_deleting_an_entry_are_announced(alice: User) -> None:
    with events_listen() as listener:
        note = entry(alice, "Note")
        entry_update(entry=note, body="More")
        entry_delete(entry=note)
        events = _received(listener)

    user = str(alice.id)
    assert events == [
        ("archive.updated", user, str(note.id)),
        ("archive.updated", user, str(note.id)),
        ("archive.deleted", user, str(note.id)),
    ]


def test_linking_and_unlinking_announce_both_entries(alice: User) -> None:
    first, second = entry(alice, "First"), entry(alice, "Second")
    with events_listen() as listener:
        link_add(user_id=alice.id, source_id=first.id, target_id=second.id)
        with pytest.raises(LinkExists):
            link_add(user_id=alice.id, source_id=first.id, target_id=second.id)
        link_remove(user_id=alice.id, source_id=first.id, target_id=second.id)
        events = _received(listener)

    both = [
        ("archive.updated", str(alice.id), str(first.id)),
        ("archive.updated", str(alice.id), str(second.id)),
    ]
    assert events == both + both


def test_pinning_unpinning_and_deleting_a_pinned_entry_announce_the_chat(alice: User) -> None:
    chat = chat_of(alice)
    note = entry(alice, "Note")
    with events_listen() as listener:
        chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id)
        chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id)  # already: no event
        chat_pin_remove(user_id=alice.id, chat_id=chat.id, entry_id=note.id)
        chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id)
        entry_delete(entry=note)
        events = _received(listener)

    pinned = ("chat.updated", str(alice.id), str(chat.id))
    assert events == [
        pinned,
        pinned,
        pinned,
        ("archive.deleted", str(alice.id), str(note.id)),
        pinned,
    ]


def test_the_guests_moved_entries_are_announced_to_the_account(guest: User, alice: User) -> None:
    note = entry(guest, "Note")
    with events_listen() as listener:
        guest_upgrade(guest_id=guest.id, account=alice)
        events = [event for event in _received(listener) if event[0].startswith("archive.")]

    assert events == [("archive.updated", str(alice.id), str(note.id))]
