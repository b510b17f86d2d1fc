"""`vero.lib.db.instances_insert`: a few new rows in one `INSERT … VALUES` statement."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chats.models import Chat, Message
from chats.tree import message_append
from vero.lib.db import instances_insert

pytestmark = pytest.mark.django_db


def test_it_inserts_every_field_as_save_would_in_one_statement(alice: User) -> None:
    chat = Chat.objects.create(user=alice, title="t", settings={})
    parts = [{"type": "text", "text": "a"}]
    root = message_append(chat=chat, parent=None, role="user", parts=parts)
    question = Message(
        id=uuid.uuid4(), chat=chat, branch_id=root.branch_id, seq=root.seq + 1, parent=root,
        role="assistant", parts=[{"type": "text", "text": "b \"quoted\" ✓"}],
    )  # fmt: skip
    answer = Message(
        id=uuid.uuid4(), chat=chat, branch_id=root.branch_id, seq=root.seq + 2, parent=question,
        role="user", parts=[], status=Message.Status.STREAMING, usage={"input_tokens": 3},
    )  # fmt: skip

    with CaptureQueriesContext(connection) as captured:
        instances_insert([question, answer])

    assert len(captured.captured_queries) == 1
    assert "UNNEST" not in captured.captured_queries[0]["sql"]
    assert not question._state.adding
    saved = {m.id: m for m in Message.objects.filter(id__in=[question.id, answer.id])}
    assert saved[question.id].text == 'b "quoted" ✓'
    assert saved[question.id].parent_id == root.id
    assert saved[answer.id].status == Message.Status.STREAMING
    assert saved[answer.id].usage == {"input_tokens": 3}
    # auto_now(_add) fields are stamped as by save()
    assert saved[answer.id].created_at is not None
    assert saved[answer.id].created_at == answer.created_at


def test_it_refuses_instances_without_a_primary_key(alice: User) -> None:
    user = User(email="x@example.com")
    user.pk = None
    with pytest.raises(ValueError):
        instances_insert([user])
    assert not User.objects.filter(email="x@example.com").exists()
