"""`vero.lib.db.instances_insert`: a few new rows in one `INSERT … VALUES` statement; its
statement alone (`instances_insert_sql`), for a writer that folds several inserts into one."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chats.models import Branch, Chat, Message
from chats.tree_services import message_append
from vero.lib.db import instances_insert, instances_insert_sql

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


def test_its_statement_takes_sql_for_some_columns_so_a_writer_can_fold_inserts(
    alice: User,
) -> None:
    chat = Chat(id=uuid.uuid4(), user=alice, title="t", settings={})
    branch = Branch(chat=chat, path="0000")
    message = Message(id=uuid.uuid4(), chat=chat, branch_id=0, seq=0, role="user", parts=[])
    chat_sql, chat_params = instances_insert_sql([chat])
    branch_sql, branch_params = instances_insert_sql([branch], expressions={"id": "DEFAULT"})
    message_sql, message_params = instances_insert_sql(
        [message], expressions={"branch_id": "(SELECT id FROM branch)"}
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH chat AS ({chat_sql}), branch AS ({branch_sql} RETURNING id), "
            f"message AS ({message_sql}) SELECT id FROM branch",
            [*chat_params, *branch_params, *message_params],
        )
        row = cursor.fetchone()

    saved = Message.objects.select_related("branch__chat").get(id=message.id)
    assert saved.branch_id == row[0]  # the serial key of the branch inserted beside it
    assert (str(saved.branch.path), saved.branch.chat.title) == ("0000", "t")
