"""Every event kind has a schema, and what the real services publish matches it on the wire.

Each test runs a service that publishes, LISTENs on the channel over a connection of its own
(so only committed events arrive, as a server process would receive them) and checks every
payload against its kind's schema in `realtime.events`. A test says which kinds it covers with
`@publishes`, so a kind added without a test fails the last test here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, get_args

import pytest
from django.test import Client

from accounts.models import User
from archive.services import entry_create, entry_delete
from chats.delete_services import message_delete_single
from chats.fork_services import chat_fork
from chats.models import Chat, Message
from chats.reaper import messages_reap
from chats.services import chat_delete, chat_rename, chats_move_to_account, message_send
from chats.version_services import branch_select, message_edit_in_place, message_edit_user
from realtime.events import EVENT_SCHEMAS, EventKind, EventSchemaError, event_check, event_payload
from tests.chats.branching_support import conversation
from tests.chats.helpers import send, wait_for_answer, wait_for_title
from tests.fake_provider import Script
from tests.helpers import EventListener, events_listen

pytestmark = pytest.mark.django_db(transaction=True)

COVERED: set[str] = set()


def publishes[T: Callable[..., Any]](*kinds: EventKind) -> Callable[[T], T]:
    """Record that the decorated test checks events of `kinds` on the wire."""

    def mark(test: T) -> T:
        COVERED.update(kinds)
        return test

    return mark


def received(listener: EventListener, timeout: float = 0.5) -> list[dict[str, Any]]:
    """The payloads delivered so far, each checked against its kind's schema."""
    payloads = listener.received(timeout=timeout)
    for payload in payloads:
        event_check(payload)
        # Every delivered event carries its version, the database's time of the write.
        datetime.fromisoformat(payload.pop("at"))
    return payloads


def event(
    kind: EventKind, *, user: uuid.UUID, chat: uuid.UUID, message: uuid.UUID | None = None
) -> dict[str, str]:
    """The payload a listener should receive: ids as text, `message` only when there is one."""
    payload = {"user": str(user), "kind": kind, "chat": str(chat)}
    if message is not None:
        payload["message"] = str(message)
    return payload


@pytest.fixture
def chat(alice: User) -> Chat:
    return Chat.objects.create(user=alice, title="Planets")


@publishes("chat.created")
def test_a_guests_chats_moved_to_their_account_are_announced_as_new(
    guest: User, alice: User
) -> None:
    chat = Chat.objects.create(user=guest, title="Moons")
    with events_listen() as listener:
        chats_move_to_account(guest_id=guest.id, account_id=alice.id)
        events = received(listener)

    assert events == [event("chat.created", user=alice.id, chat=chat.id)]


@publishes("chat.created")
def test_a_send_that_starts_a_chat_announces_it_with_its_answer(alice: User) -> None:
    with events_listen() as listener:
        turn = message_send(user_id=alice.id, chat=None, text="Hello", model_id="fake:model")
        events = received(listener)

    assert events == [
        event("chat.created", user=alice.id, chat=turn.chat.id, message=turn.answer.id)
    ]


@publishes("chat.created")
def test_a_fork_is_announced_as_a_new_chat(chat: Chat) -> None:
    _q1, _a1, q2, _a2 = conversation(chat, "q1", "a1", "q2", "a2")
    with events_listen() as listener:
        fork = chat_fork(chat=chat, message=q2)
        events = received(listener)

    assert events == [event("chat.created", user=chat.user_id, chat=fork.chat.id)]


@publishes("chat.updated")
def test_a_renamed_chat_is_announced(chat: Chat) -> None:
    with events_listen() as listener:
        chat_rename(chat=chat, title="Outer planets")
        events = received(listener)

    assert events == [event("chat.updated", user=chat.user_id, chat=chat.id)]


@publishes("chat.deleted")
def test_a_deleted_chat_is_announced(chat: Chat) -> None:
    conversation(chat, "q1", "a1")
    with events_listen() as listener:
        chat_delete(chat=chat)
        events = received(listener)

    assert events == [event("chat.deleted", user=chat.user_id, chat=chat.id)]


@publishes("message.created")
def test_a_send_in_a_chat_announces_its_answer(chat: Chat) -> None:
    conversation(chat, "q1", "a1")
    chat.refresh_from_db()
    with events_listen() as listener:
        shown = message_send(
            user_id=chat.user_id, chat=chat, text="q2", model_id="fake:model",
            seen_version=chat.tree_version,
        )  # fmt: skip
        stale = message_send(
            user_id=chat.user_id, chat=chat, text="q2 again", model_id="fake:model",
            parent_id=shown.question.parent_id, seen_version=None,
        )  # fmt: skip
        events = received(listener)

    assert events == [
        event("message.created", user=chat.user_id, chat=chat.id, message=turn.answer.id)
        for turn in (shown, stale)
    ]


@publishes("chat.created", "message.updated", "chat.updated")
def test_a_new_chats_answer_and_title_are_announced_as_they_are_saved(
    client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["Four ", "moons."]), Script(text="Galilean moons"))
    with events_listen() as listener:
        send(client, "How many big moons has Jupiter?", fake_model)
        answer = wait_for_answer(Message.objects.get(role=Message.Role.ASSISTANT).id)
        # The title comes after the answer; waiting for it keeps its event out of later tests.
        wait_for_title(answer.chat, "Galilean moons")
        events = received(listener)

    user, chat = answer.chat.user_id, answer.chat_id
    assert answer.status == Message.Status.COMPLETE
    assert events == [
        event("chat.created", user=user, chat=chat, message=answer.id),
        event("message.updated", user=user, chat=chat, message=answer.id),
        event("chat.updated", user=user, chat=chat),
    ]


@publishes("message.updated")
def test_an_edit_in_place_is_announced_as_an_updated_message(chat: Chat) -> None:
    _question, answer = conversation(chat, "q1", "a1")
    with events_listen() as listener:
        message_edit_in_place(message=answer, text="a1, corrected")
        events = received(listener)

    assert events == [event("message.updated", user=chat.user_id, chat=chat.id, message=answer.id)]


@publishes("message.updated")
def test_an_answer_the_reaper_interrupts_is_announced_as_an_updated_message(alice: User) -> None:
    turn = message_send(user_id=alice.id, chat=None, text="Hello", model_id="fake:model")
    with events_listen() as listener:
        reaped = messages_reap(stale_after=timedelta(0))
        events = received(listener)

    assert reaped == 1
    assert events == [
        event("message.updated", user=alice.id, chat=turn.chat.id, message=turn.answer.id)
    ]


@publishes("tree.changed")
def test_a_branching_edit_is_announced_with_its_new_answer(chat: Chat) -> None:
    question, _answer = conversation(chat, "q1", "a1")
    with events_listen() as listener:
        edit = message_edit_user(chat=chat, message=question, text="q1, edited", model_id="m")
        events = received(listener)

    assert events == [
        event("tree.changed", user=chat.user_id, chat=chat.id, message=edit.answer.id)
    ]


@publishes("tree.changed")
def test_a_selection_and_a_delete_are_announced_as_tree_changes(chat: Chat) -> None:
    question, _answer = conversation(chat, "q1", "a1")
    edit = message_edit_user(chat=chat, message=question, text="q1, edited", model_id="m")
    with events_listen() as listener:
        shown = branch_select(chat=chat, parent_id=None, index=0)
        message_delete_single(chat=chat, message=edit.answer)
        events = received(listener)

    assert shown == question.id
    assert events == [
        event("tree.changed", user=chat.user_id, chat=chat.id, message=question.id),
        event("tree.changed", user=chat.user_id, chat=chat.id),
    ]


@publishes("archive.updated", "archive.deleted")
def test_an_archive_entrys_writes_are_announced_with_its_id(alice: User) -> None:
    with events_listen() as listener:
        entry = entry_create(user_id=alice.id, title="Note")
        entry_delete(entry=entry)
        events = received(listener)

    assert events == [
        {"user": str(alice.id), "kind": kind, "entry": str(entry.id)}
        for kind in ("archive.updated", "archive.deleted")
    ]


def test_a_payload_that_does_not_match_its_kind_is_refused() -> None:
    user_id, chat_id, message_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    with pytest.raises(EventSchemaError):
        event_payload(user_id=user_id, kind="chat.deleted", chat_id=chat_id, message_id=message_id)
    with pytest.raises(EventSchemaError):
        event_payload(user_id=user_id, kind="message.created", chat_id=chat_id)
    with pytest.raises(EventSchemaError):
        event_payload(user_id=user_id, kind="chat.renamed", chat_id=chat_id)  # type: ignore[arg-type]
    with pytest.raises(EventSchemaError):
        event_check({"user": str(user_id), "kind": "chat.updated", "chat": chat_id})


def test_every_event_kind_has_a_schema_and_a_test_on_the_wire() -> None:
    kinds = set(get_args(EventKind))

    assert set(EVENT_SCHEMAS) == kinds
    assert kinds == COVERED
