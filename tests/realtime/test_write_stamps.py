"""Every write that changes what a user sees stamps the chat (and the messages it changed) with
the database clock and publishes an event, on commit only, whose `at` is that stamp.

The cache sync pages on these stamps (docs/realtime.md): a write that forgot to stamp would be
missed by every other device. The table below names a case for every public write service of
the modules allowed to publish; a new service without a case (or a reason to have none) fails
`test_every_write_service_has_a_case`.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from chats import (
    answer_services,
    delete_services,
    fork_services,
    services,
    tree_services,
    version_services,
)
from chats.models import Chat, ChatDeletion, Message, MessageDeletion
from models_registry.calls import ENGINE_OPENAI_COMPATIBLE, CallTarget
from realtime.origin import origin_reset, origin_set
from tests.chats.branching_support import conversation
from tests.helpers import events_listen

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class World:
    user: User
    chat: Chat
    messages: list[Message]  # q1, a1, q2, a2 on one route
    streaming: Message  # an answer being generated, under a2's question q3


def _world() -> World:
    user = User.objects.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com", password="x")
    chat = Chat.objects.create(user=user, title="Stamps")
    messages = conversation(chat, "q1", "a1", "q2", "a2", "q3")
    with transaction.atomic():
        tree_services.chat_lock(chat_id=chat.id)
        streaming = tree_services.message_append(
            chat=chat, parent=messages[-1], role=Message.Role.ASSISTANT, parts=[],
            model_id="fake:model", status=Message.Status.STREAMING,
        )  # fmt: skip
    return World(user=user, chat=chat, messages=messages[:4], streaming=streaming)


def _target() -> CallTarget:
    return CallTarget(
        model_id="fake:model", engine=ENGINE_OPENAI_COMPATIBLE, provider_slug="fake",
        provider_kind="openai_compatible", provider_model="model", api_base=None, api_key=None,
    )  # fmt: skip


def _finish(world: World) -> uuid.UUID:
    answer_services.answer_finish(
        message_id=world.streaming.id, chat_id=world.chat.id, user_id=world.user.id,
        target=_target(), parts=[{"type": "text", "text": "done"}], steps=[],
        outcome=answer_services.AnswerOutcome(status="complete"), seq=1,
    )  # fmt: skip
    return world.streaming.id


def _edit_user(world: World) -> uuid.UUID:
    edit = version_services.message_edit_user(
        chat=world.chat, message=world.messages[2], text="q2 edited", model_id="fake:model"
    )
    return edit.version.id


def _regenerate(world: World) -> uuid.UUID:
    return version_services.message_regenerate(chat=world.chat, message=world.messages[3]).id


def _select(world: World) -> uuid.UUID:
    version = _regenerate(world)
    version_services.message_select(chat=world.chat, message=world.messages[3])
    parent = Message.objects.get(id=version).parent_id  # the parent's selection changed
    assert parent is not None
    return parent


def _branch_select(world: World) -> uuid.UUID:
    _regenerate(world)
    parent = world.messages[2].id
    version_services.branch_select(chat=world.chat, parent_id=parent, index=0)
    return parent


def _send(world: World) -> uuid.UUID:
    _finish(world)
    turn = services.message_send(
        user_id=world.user.id, chat=world.chat, text="q4", model_id="fake:model",
        seen_version=Chat.objects.get(id=world.chat.id).tree_version,
    )  # fmt: skip
    return turn.answer.id


def _send_new_branch(world: World) -> uuid.UUID:
    turn = services.message_send(
        user_id=world.user.id, chat=world.chat, text="q2 again", model_id="fake:model",
        parent_id=world.messages[1].id,
    )  # fmt: skip
    return turn.answer.id


def _delete_single(world: World) -> None:
    _finish(world)
    delete_services.message_delete_single(chat=world.chat, message=world.messages[3])


def _delete_subtree(world: World) -> None:
    _finish(world)
    delete_services.message_delete_subtree(chat=world.chat, message=world.messages[2])


def _delete_turn(world: World) -> None:
    _finish(world)
    delete_services.message_delete_turn(chat=world.chat, message=world.messages[2])


def _stop_orphan(world: World) -> uuid.UUID:
    services.message_stop_orphan(message=Message.objects.get(id=world.streaming.id))
    return world.streaming.id


def _interrupt(world: World) -> uuid.UUID:
    answer_services.message_interrupt_orphan(message_id=world.streaming.id)
    return world.streaming.id


def _interrupt_stale(world: World) -> uuid.UUID:
    answer_services.messages_interrupt_stale(before=timezone.now() + timedelta(days=1), keep=set())
    return world.streaming.id


def _interrupt_with_content(world: World) -> uuid.UUID:
    answer_services.messages_interrupt_with_content(checkpoints=[], ids=[world.streaming.id])
    return world.streaming.id


def _title(world: World) -> None:
    answer_services.chat_title_generated_save(
        chat_id=world.chat.id, user_id=world.user.id, fallback="Stamps", title="A better title"
    )


def _rename(world: World) -> None:
    services.chat_rename(chat=world.chat, title="Renamed")


def _settings(world: World) -> None:
    services.chat_settings_update(
        chat_id=world.chat.id, user_id=world.user.id, patch={"tools": ["weather"]}
    )


def _edit_assistant(world: World) -> uuid.UUID:
    return version_services.message_edit_assistant(
        chat=world.chat, message=world.messages[3], text="a2 edited"
    ).id


def _edit_in_place(world: World) -> uuid.UUID:
    return version_services.message_edit_in_place(message=world.messages[3], text="a2 fixed").id


# name -> (the write, the event kind it publishes). The write returns the message that must
# carry the chat's new stamp, when it changed one.
CASES: dict[str, tuple[Callable[[World], uuid.UUID | None], str]] = {
    "services.message_send": (_send, "message.created"),
    "services.message_send (a new branch)": (_send_new_branch, "message.created"),
    "services.chat_rename": (_rename, "chat.updated"),
    "services.chat_settings_update": (_settings, "chat.updated"),
    "services.message_stop_orphan": (_stop_orphan, "message.updated"),
    "answer_services.answer_finish": (_finish, "message.updated"),
    "answer_services.chat_title_generated_save": (_title, "chat.updated"),
    "answer_services.message_interrupt_orphan": (_interrupt, "message.updated"),
    "answer_services.messages_interrupt": (_interrupt, "message.updated"),
    "answer_services.messages_interrupt_stale": (_interrupt_stale, "message.updated"),
    "answer_services.messages_interrupt_with_content": (_interrupt_with_content, "message.updated"),
    "version_services.message_edit_user": (_edit_user, "tree.changed"),
    "version_services.message_edit_assistant": (_edit_assistant, "tree.changed"),
    "version_services.message_edit_in_place": (_edit_in_place, "message.updated"),
    "version_services.message_regenerate": (_regenerate, "tree.changed"),
    "version_services.message_select": (_select, "tree.changed"),
    "version_services.branch_select": (_branch_select, "tree.changed"),
    "delete_services.message_delete_single": (_delete_single, "tree.changed"),
    "delete_services.message_delete_subtree": (_delete_subtree, "tree.changed"),
    "delete_services.message_delete_turn": (_delete_turn, "tree.changed"),
}

# Write services covered by their own tests below, and the helpers that are not whole writes.
OWN_TESTS = {
    "services.chat_delete",
    "services.chats_move_to_account",
    "fork_services.chat_fork",
}
NOT_WRITES = {
    "services.title_fallback",
    "services.title_clean",
    "version_services.parts_with_text",
    "version_services.parts_without_files",
    "version_services.parts_text_check",
    # Steps inside a write's transaction, called by the services above.
    "version_services.route_select_locked",
    "answer_services.db_off_loop",
    # A streaming answer's checkpoint: the sync leaves streaming answers out; their end stamps.
    "answer_services.answers_checkpoint",
}


def _stamp(chat_id: uuid.UUID) -> datetime:
    return Chat.objects.values_list("updated_at", flat=True).get(id=chat_id)


def test_every_write_service_has_a_case() -> None:
    """A public write service added to a publishing module without a stamp case fails here."""
    modules = (services, answer_services, version_services, delete_services, fork_services)
    found = set()
    for module in modules:
        short = module.__name__.removeprefix("chats.")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                found.add(f"{short}.{name}")
    covered = {name.split(" ")[0] for name in CASES} | OWN_TESTS | NOT_WRITES
    assert found - covered == set()


@pytest.mark.parametrize("name", list(CASES))
def test_the_write_stamps_the_chat_with_the_database_clock(name: str) -> None:
    world = _world()
    write, kind = CASES[name]
    before = _stamp(world.chat.id)
    with events_listen() as listener:
        changed = write(world)
        events = listener.received(timeout=0.3)
    after = _stamp(world.chat.id)
    assert after > before
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - %s", [after])
        (age,) = cursor.fetchone()
    assert age.total_seconds() < 30  # the database's own clock, not some other
    if changed is not None:
        message_stamp = Message.objects.values_list("updated_at", flat=True).get(id=changed)
        assert message_stamp == after  # the same transaction stamp as the chat
    ours = [event for event in events if event["chat"] == str(world.chat.id)]
    assert kind in [event["kind"] for event in ours]
    assert datetime.fromisoformat(ours[-1]["at"]) == after


def test_deleted_messages_leave_tombstones_stamped_like_the_chat() -> None:
    world = _world()
    assert world.streaming.parent_id is not None
    gone = [m.id for m in world.messages[2:]] + [world.streaming.parent_id, world.streaming.id]
    Message.objects.filter(id=world.streaming.id).update(status=Message.Status.COMPLETE)
    delete_services.message_delete_subtree(chat=world.chat, message=world.messages[2])
    tombstones = MessageDeletion.objects.filter(chat_id=world.chat.id)
    assert sorted(t.message_id for t in tombstones) == sorted(gone)
    assert {t.deleted_at for t in tombstones} == {_stamp(world.chat.id)}


def test_a_deleted_chat_leaves_one_chat_tombstone_and_no_message_tombstones() -> None:
    world = _world()
    with events_listen() as listener:
        services.chat_delete(chat=world.chat)
        events = listener.received(timeout=0.3)
    tombstone = ChatDeletion.objects.get(chat_id=world.chat.id)
    assert not MessageDeletion.objects.filter(chat_id=world.chat.id).exists()
    assert datetime.fromisoformat(events[-1]["at"]) == tombstone.deleted_at
    assert events[-1]["kind"] == "chat.deleted"


def test_the_guest_move_stamps_the_chats_and_their_messages() -> None:
    world = _world()
    account = User.objects.create_user(email="account@example.com", password="x")
    before = _stamp(world.chat.id)
    with transaction.atomic():
        services.chats_move_to_account(guest_id=world.user.id, account_id=account.id)
    after = _stamp(world.chat.id)
    assert after > before
    stamps = set(Message.objects.filter(chat_id=world.chat.id).values_list("updated_at", flat=True))
    assert stamps == {after}  # other devices of the account see the whole chat as new


def test_a_fork_is_a_new_chat_stamped_by_the_database() -> None:
    world = _world()
    with events_listen() as listener:
        fork = fork_services.chat_fork(chat=world.chat, message=world.messages[1]).chat
        events = listener.received(timeout=0.3)
    stamp = _stamp(fork.id)
    assert set(Message.objects.filter(chat_id=fork.id).values_list("updated_at", flat=True)) == {
        stamp
    }
    assert [e["kind"] for e in events if e["chat"] == str(fork.id)] == ["chat.created"]


def test_a_rolled_back_write_publishes_nothing() -> None:
    world = _world()
    before = _stamp(world.chat.id)
    with events_listen() as listener:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.chat_rename(chat=world.chat, title="Never")
            raise RuntimeError("the request failed after the write")
        assert listener.received(timeout=0.3) == []
        services.chat_rename(chat=world.chat, title="Kept")
        assert [e["kind"] for e in listener.received(timeout=0.3)] == ["chat.updated"]
    assert _stamp(world.chat.id) > before


def test_an_event_names_the_tab_that_caused_it_and_no_other() -> None:
    world = _world()
    with events_listen() as listener:
        token = origin_set("tab-1")
        try:
            services.chat_rename(chat=world.chat, title="From tab 1")
        finally:
            origin_reset(token)
        services.chat_rename(chat=world.chat, title="From no tab")
        first, second = listener.received(timeout=0.3)
    assert first["origin"] == "tab-1"
    assert "origin" not in second
