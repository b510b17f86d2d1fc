"""Many writers on one chat at once: the chat row lock keeps the tree whole.

Each thread has its own database connection (Django's are per thread) and all start together
at a barrier; the tests commit for real, so they run on a transactional database.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable

import orjson
import psycopg
import pytest
from django.db import connection

from accounts.models import User
from chats.delete_services import message_delete_single, message_delete_subtree
from chats.errors import MessageNotInChat, SelectionOutOfRange
from chats.models import Branch, Chat, Message
from chats.version_services import branch_select, message_regenerate
from realtime.events import CHANNEL
from tests.chats.branching_support import check_tree, conversation, say

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
OPERATIONS = 20


def _together(work: Callable[[int], None]) -> list[BaseException]:
    """Run `work(thread_number)` in THREADS threads released at once; return their errors."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            barrier.wait()
            work(number)
        except BaseException as error:  # collected and asserted on by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_appends_and_regenerations_under_one_parent_never_collide(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    question, answer = conversation(chat, "hi", "hello")

    def work(number: int) -> None:
        mine = Chat.objects.get(id=chat.id)
        for step in range(OPERATIONS):
            if (number + step) % 2:
                message_regenerate(chat=mine, message=answer, model_id=f"model-{number}")
            else:
                say(mine, question, f"{number}/{step}", role="assistant")

    assert _together(work) == []

    tree = check_tree(chat.id)
    assert len(tree.children[question.id]) == 1 + THREADS * OPERATIONS
    assert Branch.objects.filter(chat=chat).count() == THREADS * OPERATIONS + 1
    selected = Message.objects.get(id=question.id).selected_child_index
    assert selected == THREADS * OPERATIONS, "the last writer's answer is the one shown"


def test_deletes_racing_appends_leave_a_consistent_tree(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    messages = conversation(chat, *(f"m{n}" for n in range(30)))
    first = messages[0].id

    def work(number: int) -> None:
        rng = random.Random(number)
        mine = Chat.objects.get(id=chat.id)
        for _step in range(OPERATIONS):
            ids = list(Message.objects.filter(chat_id=chat.id).values_list("id", flat=True))
            target = Message(id=rng.choice(ids), chat_id=chat.id)
            try:
                if number % 2 == 0 and target.id != first:
                    delete = rng.choice([message_delete_single, message_delete_subtree])
                    delete(chat=mine, message=target)
                elif number % 4 == 1:
                    # A stale parent instance: message_append re-reads it under the lock.
                    parent = Message.objects.filter(id=target.id).first()
                    if parent is not None:
                        say(mine, parent, f"{number}", role="assistant")
                else:
                    branch_select(chat=mine, parent_id=target.id, index=0)
            except (MessageNotInChat, SelectionOutOfRange):
                pass  # deleted by another thread first, or a leaf: refused, nothing changed

    assert _together(work) == []

    tree = check_tree(chat.id)
    assert first in tree.parent_of
    orphans = Branch.objects.filter(chat=chat).exclude(
        id__in=Message.objects.filter(chat=chat).values("branch_id")
    )
    assert not orphans.exists()


def _listen() -> psycopg.Connection[tuple[object, ...]]:
    settings = connection.settings_dict
    listener = psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    )
    listener.execute(f"LISTEN {CHANNEL}")
    return listener


def test_a_committed_operation_delivers_exactly_one_event(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    question, answer = conversation(chat, "hi", "hello")
    with _listen() as listener:
        again = message_regenerate(chat=chat, message=answer)
        with pytest.raises(SelectionOutOfRange):
            branch_select(chat=chat, parent_id=question.id, index=9)

        delivered = [orjson.loads(n.payload) for n in listener.notifies(timeout=1.0)]

    assert [bool(event.pop("at", None)) for event in delivered] == [True]  # its version

    assert delivered == [
        {
            "user": str(alice.id),
            "kind": "tree.changed",
            "chat": str(chat.id),
            "message": str(again.id),
        }
    ]
    assert uuid.UUID(delivered[0]["message"]) == again.id
