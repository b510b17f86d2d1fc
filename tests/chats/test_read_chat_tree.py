"""read_chat_tree: the model reads the versions of its own chat, and nothing else."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest

from accounts.models import User
from chats.models import Chat, Message
from chats.tools import READ_CHAT_TREE
from tests.chats.branching_support import say
from tools.registry import ToolContext, ToolOutcome, tool_execute

pytestmark = pytest.mark.django_db(transaction=True)


def read(context: ToolContext, **arguments: Any) -> ToolOutcome:
    return asyncio.run(
        tool_execute(
            tools=[READ_CHAT_TREE], name="read_chat_tree",
            arguments=orjson.dumps(arguments).decode(), context=context,
        )
    )  # fmt: skip


@pytest.fixture
def database_chat(alice: User) -> dict[str, Message | Chat]:
    """Which database? answered twice (Postgres, then MySQL on a regenerate); the user went on
    from the Postgres answer, and the answer being written is under that."""
    chat = Chat.objects.create(user=alice, title="Databases")
    question = say(chat, None, "Which database should I use for my app?")
    postgres = say(
        chat, question, "Use PostgreSQL: it has ltree and full-text search.", "assistant"
    )
    mysql = say(chat, question, "Use MySQL, it is everywhere.", "assistant")
    follow_up = say(chat, postgres, "How do I index a tree in it?")
    answer = say(chat, follow_up, "", "assistant")
    return {"chat": chat, "question": question, "postgres": postgres, "mysql": mysql,
            "follow_up": follow_up, "answer": answer}  # fmt: skip


def context_of(alice: User, data: dict[str, Any]) -> ToolContext:
    return ToolContext(user_id=alice.id, chat_id=data["chat"].id, message_id=data["answer"].id)


def test_branch_points_list_both_answers_with_previews_and_which_one_this_answer_builds_on(
    alice: User, database_chat: dict[str, Any]
) -> None:
    outcome = read(context_of(alice, database_chat), action="branch_points")
    assert not outcome.is_error
    (point,) = outcome.result["branch_points"]
    assert point["after"]["message_id"] == str(database_chat["question"].id)
    assert [
        (v["version"], v["versions"], v["on_current_route"], v["preview"][:16])
        for v in point["versions"]
    ] == [(1, 2, True, "Use PostgreSQL: "), (2, 2, False, "Use MySQL, it is")]
    assert outcome.result["messages_in_chat"] == 5


def test_the_route_is_the_one_this_answer_builds_on_even_when_the_page_shows_another(
    alice: User, database_chat: dict[str, Any]
) -> None:
    # The page selected the MySQL version meanwhile; the answer being written is still under
    # the PostgreSQL one.
    Message.objects.filter(id=database_chat["question"].id).update(selected_child_index=1)
    outcome = read(context_of(alice, database_chat), action="route")
    ids = [step["message_id"] for step in outcome.result["route"]]
    assert ids == [
        str(database_chat[name].id) for name in ("question", "postgres", "follow_up", "answer")
    ]
    assert outcome.result["route"][1]["versions"] == 2


def test_read_returns_a_whole_version_with_its_parent_replies_and_siblings(
    alice: User, database_chat: dict[str, Any]
) -> None:
    outcome = read(
        context_of(alice, database_chat), action="read", message_id=str(database_chat["mysql"].id)
    )
    result = outcome.result
    assert result["text"] == "Use MySQL, it is everywhere."
    assert (result["version"], result["versions"], result["on_current_route"]) == (2, 2, False)
    assert result["parent"]["message_id"] == str(database_chat["question"].id)
    assert result["replies"] == []
    assert result["sibling_ids"] == [
        str(database_chat["postgres"].id),
        str(database_chat["mysql"].id),
    ]


def test_find_searches_every_version(alice: User, database_chat: dict[str, Any]) -> None:
    outcome = read(context_of(alice, database_chat), action="find", query="mysql")
    assert [match["message_id"] for match in outcome.result["matches"]] == [
        str(database_chat["mysql"].id)
    ]


def test_a_message_of_another_chat_is_not_found_even_the_users_own(
    alice: User, bob: User, database_chat: dict[str, Any]
) -> None:
    other = Chat.objects.create(user=alice)
    elsewhere = say(other, None, "a secret in another chat")
    bobs = say(Chat.objects.create(user=bob), None, "bob's secret")
    for message in (elsewhere, bobs):
        outcome = read(context_of(alice, database_chat), action="read", message_id=str(message.id))
        assert outcome.result["error"]["type"] == "not_found"
    outcome = read(context_of(alice, database_chat), action="find", query="secret")
    assert outcome.result["matches"] == []


def test_bob_acting_in_alices_chat_finds_no_chat(
    alice: User, bob: User, database_chat: dict[str, Any]
) -> None:
    context = ToolContext(user_id=bob.id, chat_id=database_chat["chat"].id, message_id=uuid.uuid4())
    outcome = read(context, action="route")
    assert outcome.result["error"] == {
        "type": "not_found",
        "message": "This chat no longer exists.",
    }


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"action": "read"}, "`read` needs a message_id."),
        ({"action": "read", "message_id": "not-a-uuid"}, "is not a message id"),
        ({"action": "find"}, "`find` needs a query."),
        ({"action": "drop_table"}, "is not one of"),
        ({"action": "route", "limit": 500}, "is greater than the maximum of 50"),
    ],
)
def test_bad_arguments_are_explained_to_the_model(
    alice: User, database_chat: dict[str, Any], arguments: dict[str, Any], words: str
) -> None:
    outcome = read(context_of(alice, database_chat), **arguments)
    assert outcome.is_error
    assert words in outcome.result["error"]["message"]


def test_a_long_route_is_paged_from_the_newest(alice: User) -> None:
    chat = Chat.objects.create(user=alice)
    parent = None
    for number in range(30):
        parent = say(chat, parent, f"message {number}", "user" if number % 2 == 0 else "assistant")
    assert parent is not None
    context = ToolContext(user_id=alice.id, chat_id=chat.id, message_id=parent.id)
    newest = read(context, action="route", limit=5).result
    assert [step["preview"] for step in newest["route"]] == [f"message {n}" for n in range(25, 30)]
    assert (newest["route_length"], newest["first_position"]) == (30, 26)
    older = read(context, action="route", limit=5, offset=5).result
    assert [step["preview"] for step in older["route"]] == [f"message {n}" for n in range(20, 25)]
