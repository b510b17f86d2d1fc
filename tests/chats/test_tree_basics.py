"""Appends and alternatives on the branch tree, and the tree read."""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts.models import User
from chats.models import Branch, Chat, Message
from chats.selectors import chat_tree_load
from chats.tree_services import chat_lock, message_append

pytestmark = pytest.mark.django_db


def _say(chat: Chat, parent: Message | None, text: str, role: str = "user") -> Message:
    with transaction.atomic():
        chat_lock(chat_id=chat.id)
        message = message_append(
            chat=chat, parent=parent, role=role, parts=[{"type": "text", "text": text}]
        )
        chat.save(update_fields=["root_message_index", "updated_at"])
    return message


def test_a_linear_conversation_stays_on_one_branch(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    first = _say(chat, None, "hi")
    second = _say(chat, first, "hello", role="assistant")
    third = _say(chat, second, "how are you?")

    assert Branch.objects.filter(chat=chat).count() == 1
    assert [(m.branch_id, m.seq) for m in (first, second, third)] == [
        (first.branch_id, 0),
        (first.branch_id, 1),
        (first.branch_id, 2),
    ]
    assert chat_tree_load(chat=chat).active_path() == [first.id, second.id, third.id]


def test_an_alternative_starts_a_branch_forked_at_the_parent_and_is_selected(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    question = _say(chat, None, "hi")
    answer = _say(chat, question, "hello", role="assistant")
    retry = _say(chat, question, "hey there", role="assistant")

    branch = Branch.objects.get(id=retry.branch_id)
    assert branch.fork_message_id == question.id
    assert str(branch.path) == "0000.0000"
    assert retry.seq == 0
    question.refresh_from_db()
    assert question.selected_child_index == 1
    tree = chat_tree_load(chat=chat)
    assert tree.active_path() == [question.id, retry.id]
    assert tree.siblings(retry.id) == [answer.id, retry.id]


def test_a_second_first_message_is_a_new_root_branch(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    one = _say(chat, None, "one")
    two = _say(chat, None, "two")
    chat.refresh_from_db()
    assert chat.root_message_index == 1
    assert [str(b.path) for b in Branch.objects.filter(chat=chat).order_by("path")] == [
        "0000",
        "0001",
    ]
    assert chat_tree_load(chat=chat).siblings(one.id) == [one.id, two.id]


def test_an_out_of_range_selection_falls_back_to_the_newest(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    question = _say(chat, None, "hi")
    _say(chat, question, "a", role="assistant")
    newest = _say(chat, question, "b", role="assistant")
    Message.objects.filter(id=question.id).update(selected_child_index=7)
    assert chat_tree_load(chat=chat).active_path() == [question.id, newest.id]
