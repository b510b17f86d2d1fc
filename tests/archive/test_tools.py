"""The archive's tools, called as the generation loop calls them (`tool_execute` with a
ToolContext): each operation, each expected failure as a structured error, and bob never
reaching alice's archive."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from asgiref.sync import async_to_sync

from accounts.models import User
from archive.models import ArchiveEntry, ArchiveLink, ChatPin
from archive.tools import archive_source, body_edit
from chats.models import Chat
from tests.archive.helpers import chat_of, entry
from tools.registry import ToolContext, ToolError, ToolOutcome, tool_execute, tools_offered

pytestmark = pytest.mark.django_db(transaction=True)


def _context(user: User, chat: Chat | None = None) -> ToolContext:
    return ToolContext(
        user_id=user.id, chat_id=chat.id if chat else uuid.uuid4(), message_id=uuid.uuid4()
    )


def call(context: ToolContext, name: str, **arguments: Any) -> ToolOutcome:
    return async_to_sync(tool_execute)(
        tools=archive_source.static_tools, name=name, arguments=orjson.dumps(arguments).decode(),
        context=context,
    )  # fmt: skip


def ok(context: ToolContext, name: str, **arguments: Any) -> Any:
    outcome = call(context, name, **arguments)
    assert not outcome.is_error, outcome.result
    return outcome.result


def error(context: ToolContext, name: str, **arguments: Any) -> dict[str, str]:
    outcome = call(context, name, **arguments)
    assert outcome.is_error, outcome.result
    return outcome.result["error"]


def test_the_archive_offers_its_three_tools_in_the_archive_group(alice: User) -> None:
    offered = async_to_sync(tools_offered)(context=_context(alice), groups=["archive"])
    refused = async_to_sync(tools_offered)(context=_context(alice), groups=["weather"])

    assert {"read_archive", "write_archive", "manage_chat_pins"} <= {tool.name for tool in offered}
    assert not {tool.name for tool in refused} & {"read_archive", "write_archive"}


def test_create_then_read_by_slug_with_links(alice: User) -> None:
    context = _context(alice)
    created = ok(
        context, "write_archive", action="create", title="Trip", body="Lisbon", tags=["Travel"]
    )
    ok(context, "write_archive", action="create", title="Trip")
    ok(context, "write_archive", action="link", slug="trip", target="trip-1", kind="continues")

    read = ok(context, "read_archive", slug="trip")

    assert created["created"]["slug"] == "trip"
    assert read["entry"]["body"] == "Lisbon" and read["entry"]["tags"] == ["travel"]
    assert read["links"] == [
        {
            "direction": "to",
            "kind": "continues",
            "bidirectional": True,
            "slug": "trip-1",
            "title": "Trip",
        }
    ]
    assert ok(context, "read_archive", slug="trip-1")["links"][0]["direction"] == "from"


def test_search_by_query_and_tags_pages_with_a_cursor(alice: User, settings: Any) -> None:
    settings.ARCHIVE_PAGE_SIZE = 2
    context = _context(alice)
    for number in range(3):
        entry(alice, f"Comet {number}", "A tail of ice.", ("sky",))
    entry(alice, "Garden", "Tomatoes", ("home",))

    first = ok(context, "read_archive", query="comet", tags=["sky"], tags_mode="all")
    second = ok(context, "read_archive", query="comet", tags=["sky"], cursor=first["next_cursor"])

    slugs = [found["slug"] for found in first["entries"] + second["entries"]]
    assert sorted(slugs) == ["comet-0", "comet-1", "comet-2"]
    assert second["next_cursor"] is None
    assert first["entries"][0]["excerpt"] == "A tail of ice."
    assert [found["slug"] for found in ok(context, "read_archive", tags=["home"])["entries"]] == [
        "garden"
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"op": "replace", "find": "cat", "text": "dog"}, "a dog, a cat."),
        ({"op": "replace", "find": "cat", "text": "dog", "occurrence": "all"}, "a dog, a dog."),
        ({"op": "remove", "find": ", a cat"}, "a cat."),
        (
            {"op": "insert_before", "find": "cat", "text": "big ", "occurrence": "all"},
            "a big cat, a big cat.",
        ),
        ({"op": "insert_after", "find": "a cat", "text": "!"}, "a cat!, a cat."),
        ({"op": "append", "text": "The end."}, "a cat, a cat.\nThe end."),
    ],
)
def test_each_edit_changes_the_text_as_asked(edit: dict[str, Any], expected: str) -> None:
    assert body_edit("a cat, a cat.", edit) == expected


def test_an_update_applies_edits_in_order_and_tags_set_add_remove(alice: User) -> None:
    context = _context(alice)
    entry(alice, "List", "milk\neggs", ("shopping", "todo"))

    edits = [{"op": "append", "text": "bread"}, {"op": "replace", "find": "eggs", "text": "butter"}]
    result = ok(
        context, "write_archive", action="update", slug="list", title="Shopping list",
        edits=edits, tags_add=["Weekly"], tags_remove=["TODO"],
    )  # fmt: skip

    assert result["updated"]["body"] == "milk\nbutter\nbread"
    assert result["updated"]["title"] == "Shopping list"
    assert result["updated"]["tags"] == ["shopping", "weekly"]
    ok(context, "write_archive", action="update", slug="list", tags=["only"])
    assert ArchiveEntry.objects.get().tags == ["only"]


def test_an_edit_whose_text_is_missing_changes_nothing_not_even_the_edits_before_it(
    alice: User,
) -> None:
    context = _context(alice)
    entry(alice, "List", "milk")

    failure = error(
        context, "write_archive", action="update", slug="list",
        edits=[{"op": "append", "text": "bread"}, {"op": "remove", "find": "cheese"}],
    )  # fmt: skip

    assert failure["type"] == "not_found" and "cheese" in failure["message"]
    assert ArchiveEntry.objects.get().body == "milk"


def test_unlink_and_delete(alice: User) -> None:
    context = _context(alice)
    entry(alice, "One")
    entry(alice, "Two")
    ok(context, "write_archive", action="link", slug="one", target="two")

    assert (
        ok(context, "write_archive", action="unlink", slug="two", target="one")["unlinked"][
            "links_removed"
        ]
        == 1
    )
    assert ok(context, "write_archive", action="delete", slug="one") == {"deleted": "one"}
    assert list(ArchiveEntry.objects.values_list("slug", flat=True)) == ["two"]
    assert not ArchiveLink.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "error_type", "words"),
    [
        ({"action": "create"}, "invalid_arguments", "title"),
        ({"action": "create", "title": " "}, "invalid_arguments", "needs a title"),
        ({"action": "update", "slug": "nope"}, "not_found", "nope"),
        ({"action": "delete"}, "invalid_arguments", "slug"),
        ({"action": "link", "slug": "one"}, "invalid_arguments", "target"),
        ({"action": "link", "slug": "one", "target": "one"}, "invalid_arguments", "itself"),
        ({"action": "unlink", "slug": "one", "target": "two"}, "not_found", "not linked"),
        (
            {"action": "update", "slug": "one", "edits": [{"op": "replace", "find": "x"}]},
            "invalid_arguments",
            "text",
        ),
        ({"action": "rename", "slug": "one"}, "invalid_arguments", "schema"),
        ({"action": "update", "slug": "one", "tags": ["x" * 60]}, "invalid_arguments", "too long"),
    ],
)
def test_write_archives_expected_failures_are_structured_and_change_nothing(
    alice: User, arguments: dict[str, Any], error_type: str, words: str
) -> None:
    entry(alice, "One", "x")
    entry(alice, "Two")

    failure = error(_context(alice), "write_archive", **arguments)

    assert failure["type"] == error_type
    assert words in failure["message"]
    assert sorted(ArchiveEntry.objects.values_list("slug", "body")) == [("one", "x"), ("two", "")]


def test_manage_chat_pins_lists_pins_and_unpins_on_the_current_chat(alice: User) -> None:
    chat = chat_of(alice)
    context = _context(alice, chat)
    entry(alice, "Style", "Be terse.")
    entry(alice, "Project")

    assert ok(context, "manage_chat_pins", action="pin", slug="project") == {
        "pinned": "project", "already_pinned": False,
    }  # fmt: skip
    ok(context, "manage_chat_pins", action="pin", slug="style")
    assert ok(context, "manage_chat_pins", action="pin", slug="style")["already_pinned"] is True
    listed = ok(context, "manage_chat_pins", action="list")["pins"]
    assert [pin["slug"] for pin in listed] == ["project", "style"]
    assert ok(context, "manage_chat_pins", action="unpin", slug="project") == {
        "unpinned": "project"
    }
    assert error(context, "manage_chat_pins", action="unpin", slug="project")["type"] == "not_found"
    assert error(context, "manage_chat_pins", action="pin")["type"] == "invalid_arguments"
    assert list(ChatPin.objects.values_list("entry__slug", flat=True)) == ["style"]


def test_bob_never_reads_writes_links_or_pins_alices_entries(alice: User, bob: User) -> None:
    alices_chat = chat_of(alice)
    entry(alice, "Secret", "Alice's plan")
    ok(_context(alice, alices_chat), "manage_chat_pins", action="pin", slug="secret")
    entry(bob, "Mine")
    bob_here = _context(bob, chat_of(bob))
    bob_in_alices_chat = _context(bob, alices_chat)

    assert error(bob_here, "read_archive", slug="secret")["type"] == "not_found"
    assert ok(bob_here, "read_archive", query="plan")["entries"] == []
    assert (
        error(bob_here, "write_archive", action="update", slug="secret", body="mine")["type"]
        == "not_found"
    )
    assert error(bob_here, "write_archive", action="delete", slug="secret")["type"] == "not_found"
    assert (
        error(bob_here, "write_archive", action="link", slug="mine", target="secret")["type"]
        == "not_found"
    )
    assert error(bob_here, "manage_chat_pins", action="pin", slug="secret")["type"] == "not_found"
    assert error(bob_in_alices_chat, "manage_chat_pins", action="list")["type"] == "not_found"
    assert (
        error(bob_in_alices_chat, "manage_chat_pins", action="unpin", slug="secret")["type"]
        == "not_found"
    )

    assert ArchiveEntry.objects.get(slug="secret", user=alice).body == "Alice's plan"
    assert not ArchiveLink.objects.exists()
    assert ChatPin.objects.get().chat_id == alices_chat.id


def test_a_tool_error_is_a_tool_error() -> None:
    with pytest.raises(ToolError):
        body_edit("abc", {"op": "remove", "find": "z"})
