"""POST /api/cache/sync: what changed in a user's chats since their last sync, in pages.

The chats are written by the real services (the send's tree write, renames, deletes, the tree
services' appends), and read back over HTTP, as the browser's cache reads them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chats.delete_services import message_delete_single
from chats.models import Chat, ChatDeletion, Message, MessageDeletion
from chats.services import chat_delete, chat_rename, message_send
from chats.tombstone_services import tombstones_prune
from ratelimit.models import UserRateLimit
from realtime.sync import SyncPosition, cursor_encode
from tests.chats.branching_support import conversation
from tests.chats.helpers import send, wait_for_answer
from tests.helpers import client_for_guest

# Transactions of their own: a write stamps its transaction's clock, and the sync compares the
# stamps of writes committed one after the other, as they are in a server.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/cache/sync"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def post(client: Client, body: Any, **extra: Any) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(URL, data, content_type="application/json", **extra)


def sync(client: Client, **body: Any) -> dict[str, Any]:
    response = post(client, body)
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)


def sync_all(
    client: Client,
    last_synced_at: str | None = None,
    page_size: int = 100,
    between_pages: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every page of one sync, following the cursor; `between_pages(n)` runs after page n."""
    pages = [sync(client, last_synced_at=last_synced_at, page_size=page_size)]
    while pages[-1]["has_more"]:
        if between_pages is not None:
            between_pages(len(pages))
        pages.append(sync(client, cursor=pages[-1]["next_cursor"], page_size=page_size))
    return pages


def upserts(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chat for page in pages for chat in page["upserts"]]


def chat_ids(pages: list[dict[str, Any]]) -> list[str]:
    return [chat["id"] for chat in upserts(pages)]


def message_ids(chat: dict[str, Any]) -> set[str]:
    return {message["id"] for message in chat["messages"]}


def ids(*messages: Message) -> set[str]:
    return {str(message.id) for message in messages}


def new_chat(user: User, title: str, *texts: str) -> tuple[Chat, list[Message]]:
    """A chat and its messages, as they stand before a first sync (which sends them whole)."""
    chat = Chat.objects.create(user=user, title=title)
    return chat, conversation(chat, *texts)


def answered(client: Client, model: str, chat: Chat, parent: Message, text: str) -> list[Message]:
    """Send `text` under `parent` as the page does, and wait for the answer to settle."""
    response = send(client, text, model, chat_id=chat.id, parent=str(parent.id))
    assert response.status_code in (200, 302), response.content
    question, answer = Message.objects.filter(chat=chat).order_by("-created_at")[:2][::-1]
    return [question, wait_for_answer(answer.id)]


# -- what a sync sends --------------------------------------------------------------------------


def test_a_first_sync_sends_every_chat_whole_and_says_to_start_over(
    alice: User, alice_client: Client
) -> None:
    planets, (question, answer) = new_chat(alice, "Planets", "Is Pluto one?", "**No**, a dwarf.")
    Message.objects.filter(id=answer.id).update(html="<p><strong>No</strong>, a dwarf.</p>")
    moons, _moon_messages = new_chat(alice, "", "<b>Moons</b> & rings?")

    page = sync(alice_client, last_synced_at=None)

    assert page["reset"] is True
    assert page["has_more"] is False and page["next_cursor"] is None
    assert page["total_chats"] == 2 and page["deletions"] == []
    by_id = {chat["id"]: chat for chat in page["upserts"]}
    assert set(by_id) == {str(planets.id), str(moons.id)}
    sent = by_id[str(planets.id)]
    assert sent["whole"] is True and sent["more_messages"] is False
    assert sent["title"] == "Planets" and sent["tree_version"] == planets.tree_version
    assert message_ids(sent) == ids(question, answer)
    html = {message["id"]: message["html"] for message in sent["messages"]}
    assert html[str(answer.id)] == "<p><strong>No</strong>, a dwarf.</p>"
    assert html[str(question.id)] == "Is Pluto one?"
    # A question is shown as its text: escaped, never markup.
    assert by_id[str(moons.id)]["messages"][0]["html"] == "&lt;b&gt;Moons&lt;/b&gt; &amp; rings?"
    assert by_id[str(moons.id)]["display_title"] == "New chat"


def test_a_message_carries_its_place_in_the_tree(alice: User, alice_client: Client) -> None:
    _chat, (question, answer) = new_chat(alice, "Tree", "q", "a")

    sent = {m["id"]: m for m in sync(alice_client)["upserts"][0]["messages"]}

    stored = Message.objects.get(id=answer.id)
    assert sent[str(answer.id)] == {
        "id": str(answer.id), "parent": str(question.id), "role": "assistant",
        "status": "complete", "model_id": "", "error": "", "selected_child_index": None,
        "created": (stored.created_at - EPOCH) // timedelta(microseconds=1),
        "updated_at": sent[str(answer.id)]["updated_at"], "html": sent[str(answer.id)]["html"],
    }  # fmt: skip
    assert datetime.fromisoformat(sent[str(answer.id)]["updated_at"]) == stored.updated_at
    assert sent[str(question.id)]["parent"] is None


def test_an_answer_still_streaming_is_left_out_until_it_settles(
    alice: User, alice_client: Client
) -> None:
    turn = message_send(user_id=alice.id, chat=None, text="Hello", model_id="fake:model")

    sent = sync(alice_client)["upserts"]

    assert message_ids(sent[0]) == ids(turn.question)


def test_an_incremental_sync_sends_only_the_chats_and_messages_that_changed(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    talk, (_q1, a1) = new_chat(alice, "Talk", "q1", "a1")
    renamed, _ = new_chat(alice, "Old name", "x", "y")
    new_chat(alice, "Untouched", "u", "v")
    since = sync(alice_client)["server_timestamp"]

    q2, a2 = answered(alice_client, fake_model, talk, a1, "q2")
    chat_rename(chat=renamed, title="New name")
    page = sync(alice_client, last_synced_at=since)

    assert page["reset"] is False
    by_id = {chat["id"]: chat for chat in page["upserts"]}
    assert set(by_id) == {str(talk.id), str(renamed.id)}
    assert by_id[str(talk.id)]["whole"] is False
    # The new messages, and at most their parent, whose selection may have moved.
    assert ids(q2, a2) <= message_ids(by_id[str(talk.id)]) <= ids(a1, q2, a2)
    assert by_id[str(renamed.id)]["title"] == "New name"
    assert by_id[str(renamed.id)]["messages"] == []


def test_nothing_changed_sends_nothing(alice: User, alice_client: Client) -> None:
    new_chat(alice, "Quiet", "q", "a")
    since = sync(alice_client)["server_timestamp"]

    page = sync(alice_client, last_synced_at=since)

    assert page["upserts"] == [] and page["deletions"] == [] and page["has_more"] is False
    assert page["total_chats"] == 1


def test_one_new_answer_in_a_long_chat_costs_that_answer_not_the_tree(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    long_chat, messages = new_chat(alice, "Long", *[f"message {n}" for n in range(200)])
    since = sync(alice_client)["server_timestamp"]

    question, answer = answered(alice_client, fake_model, long_chat, messages[-1], "One more?")
    response = post(alice_client, {"last_synced_at": since})

    sent = orjson.loads(response.content)["upserts"]
    assert [chat["id"] for chat in sent] == [str(long_chat.id)]
    assert ids(question, answer) <= message_ids(sent[0]) <= ids(messages[-1], question, answer)
    assert len(response.content) < 5_000 + len(answer.html)


def test_a_chat_created_after_the_last_sync_comes_whole(alice: User, alice_client: Client) -> None:
    since = sync(alice_client)["server_timestamp"]
    chat, messages = new_chat(alice, "Fresh", "q", "a")

    sent = sync(alice_client, last_synced_at=since)["upserts"]

    assert sent[0]["id"] == str(chat.id) and sent[0]["whole"] is True
    assert message_ids(sent[0]) == ids(*messages)


def test_deleted_chats_and_messages_are_sent_as_ids(alice: User, alice_client: Client) -> None:
    gone, _ = new_chat(alice, "Gone", "q", "a")
    kept, (_question, _answer, follow_up) = new_chat(alice, "Kept", "q", "a", "q2")
    since = sync(alice_client)["server_timestamp"]

    chat_delete(chat=gone)
    message_delete_single(chat=kept, message=follow_up)
    page = sync(alice_client, last_synced_at=since)

    assert page["deletions"] == [str(gone.id)]
    (sent,) = page["upserts"]
    assert sent["id"] == str(kept.id) and sent["deleted_messages"] == [str(follow_up.id)]
    assert page["total_chats"] == 1


def test_a_client_older_than_the_retention_starts_over(alice: User, alice_client: Client) -> None:
    chat, messages = new_chat(alice, "Old", "q", "a")
    gone, _ = new_chat(alice, "Gone", "q", "a")
    chat_delete(chat=gone)
    too_old = timezone.now() - timedelta(days=settings.SYNC_TOMBSTONE_RETENTION_DAYS, hours=1)

    page = sync(alice_client, last_synced_at=too_old.isoformat())

    assert page["reset"] is True and page["deletions"] == []
    assert [chat["id"] for chat in page["upserts"]] == [str(chat.id)]
    assert page["upserts"][0]["whole"] is True
    assert message_ids(page["upserts"][0]) == ids(*messages)


def test_metadata_lists_the_models_a_new_chat_may_use(
    alice_client: Client, fake_model: str
) -> None:
    metadata = sync(alice_client)["metadata"]

    assert {"id": fake_model, "name": "Fake Model"} in metadata["models"]
    assert metadata["default_model"] in {model["id"] for model in metadata["models"]}


def test_an_incremental_sync_sends_metadata_only_when_asked(
    alice_client: Client, fake_model: str
) -> None:
    since = sync(alice_client)["server_timestamp"]

    assert sync(alice_client, last_synced_at=since)["metadata"] is None
    asked = sync(alice_client, last_synced_at=since, metadata=True)["metadata"]
    assert {"id": fake_model, "name": "Fake Model"} in asked["models"]
    refused = post(alice_client, {"last_synced_at": since, "metadata": "yes"})
    assert refused.status_code == 400 and b"metadata must be true or false" in refused.content


# -- pages --------------------------------------------------------------------------------------


def test_pages_follow_the_cursor_and_send_each_chat_once(alice: User, alice_client: Client) -> None:
    chats = [new_chat(alice, f"Chat {n}", "q", "a")[0] for n in range(7)]

    pages = sync_all(alice_client, page_size=3)

    assert [len(page["upserts"]) for page in pages] == [3, 3, 1]
    assert sorted(chat_ids(pages)) == sorted(str(chat.id) for chat in chats)
    stamps = {page["server_timestamp"] for page in pages}
    assert len(stamps) == 1  # fixed before the first page
    assert [page["reset"] for page in pages] == [True, False, False]


def test_a_chat_changed_between_pages_is_sent_again_and_none_is_skipped(
    alice: User, alice_client: Client
) -> None:
    chats = [new_chat(alice, f"Chat {n}", "q", "a")[0] for n in range(6)]
    first_sent, not_yet_sent = chats[0], chats[4]

    def write(page_number: int) -> None:
        if page_number == 1:
            chat_rename(chat=first_sent, title="Renamed after it was sent")
            chat_rename(chat=not_yet_sent, title="Renamed before it was sent")

    pages = sync_all(alice_client, page_size=2, between_pages=write)

    sent = upserts(pages)
    assert {chat["id"] for chat in sent} == {str(chat.id) for chat in chats}
    newest = {chat["id"]: chat["title"] for chat in sent}  # the client keeps the last one
    assert newest[str(first_sent.id)] == "Renamed after it was sent"
    assert newest[str(not_yet_sent.id)] == "Renamed before it was sent"
    assert chat_ids(pages).count(str(first_sent.id)) == 2


def test_messages_written_between_pages_reach_the_client(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    chats = [new_chat(alice, f"Chat {n}", "q", "a") for n in range(4)]
    leaves = {chat.id: messages[-1] for chat, messages in chats}
    added: list[Message] = []

    def write(page_number: int) -> None:
        for chat, _messages in (chats[0], chats[3]):  # one sent already, one not yet
            turn = answered(alice_client, fake_model, chat, leaves[chat.id], f"After {page_number}")
            leaves[chat.id] = turn[-1]
            added.extend(turn)

    pages = sync_all(alice_client, page_size=2, between_pages=write)
    follow_up = sync_all(alice_client, last_synced_at=pages[0]["server_timestamp"])

    received = set().union(*(message_ids(chat) for chat in upserts(pages + follow_up)))
    assert ids(*added) <= received


def test_a_chat_larger_than_the_byte_cap_is_split_across_pages(
    alice: User, alice_client: Client, settings: Any
) -> None:
    settings.SYNC_PAGE_BYTES = 4_000
    small, small_messages = new_chat(alice, "Small", "q", "a")
    big, big_messages = new_chat(alice, "Big", *[f"message {n} " * 20 for n in range(40)])

    pages = sync_all(alice_client)

    assert len(pages) > 3
    for page in pages:
        assert len(orjson.dumps(page)) < 4_000 + 2_000  # the cap, passed by one message at most
    parts = [chat for chat in upserts(pages) if chat["id"] == str(big.id)]
    assert [part["more_messages"] for part in parts] == [True] * (len(parts) - 1) + [False]
    assert [part["whole"] for part in parts] == [True] + [False] * (len(parts) - 1)
    received = [message["id"] for part in parts for message in part["messages"]]
    assert sorted(received) == sorted(str(m.id) for m in big_messages)  # each once
    small_sent = [chat for chat in upserts(pages) if chat["id"] == str(small.id)]
    assert message_ids(small_sent[0]) == ids(*small_messages)


def test_a_split_chat_changed_between_pages_is_sent_again_from_its_start(
    alice: User, alice_client: Client, settings: Any
) -> None:
    settings.SYNC_PAGE_BYTES = 3_000
    big, big_messages = new_chat(alice, "Big", *[f"message {n} " * 20 for n in range(20)])

    def write(page_number: int) -> None:
        if page_number == 1:
            chat_rename(chat=big, title="Renamed while paging")

    pages = sync_all(alice_client, between_pages=write)

    parts = upserts(pages)
    restarts = [index for index, part in enumerate(parts) if part["whole"]]
    assert len(restarts) == 2 and parts[restarts[1]]["title"] == "Renamed while paging"
    received = {message["id"] for part in parts[restarts[1] :] for message in part["messages"]}
    assert received == ids(*big_messages)


def test_the_server_timestamp_waits_for_writes_still_in_flight(
    alice: User, alice_client: Client
) -> None:
    """A write stamps its transaction's start and commits later: the timestamp must precede it,
    or the next sync, asking for what changed after it, would never send that write."""
    chat, _ = new_chat(alice, "In flight", "q", "a")
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"] or None, port=database["PORT"] or None,
        user=database["USER"] or None, password=database["PASSWORD"] or None,
        dbname=database["NAME"],
    ) as writer:  # fmt: skip
        writer.execute(
            "UPDATE chats_chat SET title = 'Written in flight', updated_at = now() WHERE id = %s",
            (chat.id,),
        )
        since = sync(alice_client)["server_timestamp"]
        writer.commit()

    sent = sync(alice_client, last_synced_at=since)["upserts"]

    assert [(c["id"], c["title"]) for c in sent] == [(str(chat.id), "Written in flight")]


def statements_of(call: Callable[[], object]) -> int:
    """How many SQL statements `call` runs (the request's own, middleware included)."""
    count = 0

    def counted(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):
        call()
    return count


def test_a_page_costs_the_same_statements_whatever_its_size(
    alice: User, alice_client: Client, django_assert_max_num_queries: Any
) -> None:
    def chats_changed(count: int) -> str:
        """`count` chats, each changed (a message deleted) after the returned timestamp."""
        made = [new_chat(alice, "Chat", "q", "a", "q2") for _ in range(count)]
        since = sync(alice_client)["server_timestamp"]
        for chat, messages in made:
            message_delete_single(chat=chat, message=messages[-1])
        return str(since)

    since = chats_changed(2)
    whole = statements_of(lambda: sync(alice_client))
    delta = statements_of(lambda: sync(alice_client, last_synced_at=since))
    assert max(whole, delta) <= 12

    since = chats_changed(40)
    with django_assert_max_num_queries(whole):
        assert len(sync(alice_client)["upserts"]) == 42
    with django_assert_max_num_queries(delta):
        assert len(sync(alice_client, last_synced_at=since)["upserts"]) == 40


# -- who sees what ------------------------------------------------------------------------------


def test_a_sync_sends_nothing_of_another_users_chats(
    alice: User, bob: User, alice_client: Client
) -> None:
    new_chat(alice, "Alice's", "q", "a")
    bobs, _ = new_chat(bob, "Bob's", "q", "a")
    chat_delete(chat=new_chat(bob, "Bob's deleted", "q", "a")[0])

    pages = sync_all(alice_client, last_synced_at=None)
    page = sync(alice_client, last_synced_at=(timezone.now() - timedelta(hours=1)).isoformat())

    assert str(bobs.id) not in chat_ids(pages) + chat_ids([page])
    assert page["deletions"] == [] and pages[0]["total_chats"] == 1


def test_a_cursor_naming_another_users_chat_yields_nothing_of_theirs(
    alice: User, bob: User, alice_client: Client
) -> None:
    bobs, bob_messages = new_chat(bob, "Bob's", "q", "a", "q2")
    position = SyncPosition(
        server_timestamp=timezone.now(), since=None, split_chat=bobs.id,
        split_after=min(message.id for message in bob_messages),
    )  # fmt: skip

    page = sync(alice_client, cursor=cursor_encode(position))

    assert page["upserts"] == [] and page["total_chats"] == 0


def test_a_guest_syncs_their_own_chats(guest: User, guest_client: Client) -> None:
    chat, _ = new_chat(guest, "Guest's", "q", "a")

    assert chat_ids([sync(guest_client)]) == [str(chat.id)]


def test_a_new_guest_gets_an_empty_page_and_no_row(client: Client) -> None:
    users = User.objects.count()

    page = sync(client)

    assert page["upserts"] == [] and page["total_chats"] == 0 and page["has_more"] is False
    assert User.objects.count() == users


# -- refusals -----------------------------------------------------------------------------------


def _cursor(alice_client: Client) -> str:
    return str(sync(alice_client, page_size=1)["next_cursor"])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        ({"since": None}, "Unknown field"),
        ({"last_synced_at": "yesterday"}, "last_synced_at"),
        ({"last_synced_at": "2026-01-01T00:00:00"}, "offset"),
        ({"last_synced_at": 1700000000}, "last_synced_at"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"page_size": "10"}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"page_size": 10.0}, "page_size"),
        ({"cursor": 12}, "cursor"),
        ({"cursor": "made-up"}, "cursor is not valid"),
        ({"cursor": "x" * 5000}, "at most"),
        (b" " * 5000, "at most"),
    ],
)
def test_a_bad_request_is_refused_with_a_reason_and_spends_nothing(
    alice: User, alice_client: Client, body: Any, says: str
) -> None:
    response = post(alice_client, body)

    assert response.status_code == 400
    assert says in orjson.loads(response.content)["error"]
    assert not UserRateLimit.objects.filter(user=alice).exists()


def test_a_tampered_cursor_is_refused(alice: User, alice_client: Client) -> None:
    for n in range(2):
        new_chat(alice, f"Chat {n}", "q", "a")
    cursor = _cursor(alice_client)
    value, _, signature = cursor.rpartition(":")
    forged = f"{value[:-2]}{'A' if value[-2] != 'A' else 'B'}{value[-1]}:{signature}"

    response = post(alice_client, {"cursor": forged})

    assert response.status_code == 400


def test_only_post_is_allowed(alice_client: Client) -> None:
    assert alice_client.get(URL).status_code == 405


def test_a_sync_spends_from_the_sync_bucket_and_an_empty_one_answers_429(
    alice: User, alice_client: Client, settings: Any
) -> None:
    settings.SYNC_BUCKET_CAPACITY = 2
    settings.SYNC_REFILL_AMOUNT = 1
    settings.SYNC_REFILL_INTERVAL_SECONDS = 600
    sync(alice_client)
    sync(alice_client)

    response = post(alice_client, {})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert orjson.loads(response.content)["error"]
    assert UserRateLimit.objects.get(user=alice, bucket="sync").tokens == 0


def test_csrf_is_enforced_for_guests_and_accounts(guest: User, alice: User) -> None:
    guest_browser = client_for_guest(guest)
    guest_browser.handler.enforce_csrf_checks = True
    account_browser = Client(enforce_csrf_checks=True)
    account_browser.force_login(alice)

    for browser in (guest_browser, account_browser):
        assert post(browser, {}).status_code == 403
        browser.get("/")  # the page sets the CSRF cookie
        token = browser.cookies[settings.CSRF_COOKIE_NAME].value
        assert post(browser, {}, headers={"X-CSRFToken": token}).status_code == 200


def test_the_response_is_never_cached(alice_client: Client) -> None:
    assert post(alice_client, {})["Cache-Control"] == "no-store"


# -- tombstones ---------------------------------------------------------------------------------


def _tombstones(alice: User, *, age: timedelta) -> tuple[ChatDeletion, MessageDeletion]:
    deleted_at = timezone.now() - age
    chat_tombstone = ChatDeletion.objects.create(
        chat_id=uuid.uuid4(), user=alice, deleted_at=deleted_at
    )
    message_tombstone = MessageDeletion.objects.create(
        chat_id=uuid.uuid4(), message_id=uuid.uuid4(), deleted_at=deleted_at
    )
    return chat_tombstone, message_tombstone


def test_tombstones_older_than_the_retention_are_pruned(alice: User) -> None:
    retention = timedelta(days=settings.SYNC_TOMBSTONE_RETENTION_DAYS)
    old = _tombstones(alice, age=retention + timedelta(hours=1))
    recent = _tombstones(alice, age=retention - timedelta(hours=1))

    assert tombstones_prune() == 2

    assert not ChatDeletion.objects.filter(id=old[0].id).exists()
    assert not MessageDeletion.objects.filter(id=old[1].id).exists()
    assert ChatDeletion.objects.filter(id=recent[0].id).exists()
    assert MessageDeletion.objects.filter(id=recent[1].id).exists()


def test_the_prune_command_prunes_and_says_how_many(alice: User, capsys: Any) -> None:
    _tombstones(alice, age=timedelta(days=settings.SYNC_TOMBSTONE_RETENTION_DAYS + 1))

    call_command("tombstones_prune")

    assert "2 tombstones pruned" in capsys.readouterr().out
    assert not ChatDeletion.objects.exists() and not MessageDeletion.objects.exists()


def test_the_reaper_loop_prunes_at_most_once_an_hour(alice: User, monkeypatch: Any) -> None:
    from chats import tombstone_services

    monkeypatch.setattr(tombstone_services, "_last_pruned", None)
    old = timedelta(days=settings.SYNC_TOMBSTONE_RETENTION_DAYS + 1)
    _tombstones(alice, age=old)
    assert tombstone_services.tombstones_prune_if_due() == 2

    _tombstones(alice, age=old)
    assert tombstone_services.tombstones_prune_if_due() == 0  # within the hour

    an_hour_ago = time.monotonic() - tombstone_services.PRUNE_EVERY_SECONDS - 1
    monkeypatch.setattr(tombstone_services, "_last_pruned", an_hour_ago)
    assert tombstone_services.tombstones_prune_if_due() == 2
