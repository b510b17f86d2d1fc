"""Long chats in the browser's terms: a page costs what it shows, changes answer with the part
that changed, and a tab that missed another tab's change never hides its own message."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chats.delete_services import message_delete_single
from chats.models import Chat, Message
from chats.route_selectors import chat_map
from chats.structure import chat_structure_load
from chats.version_services import message_select
from tests.chats.helpers import send, wait_for_answer
from tests.chats.long_chats import long_chat_create
from tests.fake_provider import Script

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}
WINDOW = 50


@pytest.fixture(autouse=True)
def _window(settings: Any) -> None:
    settings.CHAT_WINDOW_MESSAGES = WINDOW


def _shown(html: str) -> list[uuid.UUID]:
    return [uuid.UUID(found) for found in re.findall(r'data-message-id="([0-9a-f-]{36})"', html)]


def _loader(html: str, direction: str) -> str | None:
    found = re.search(rf'hx-get="(/c/[^"]+/messages\?{direction}=[0-9a-f-]{{36}})"', html)
    return found.group(1) if found else None


def _route(chat: Chat) -> list[uuid.UUID]:
    chat.refresh_from_db()
    route = chat_structure_load(chat=chat).route()
    ids = []
    for segment in route.segments:
        ids += list(
            Message.objects.filter(
                branch_id=segment.branch_id, seq__gte=segment.first.seq, seq__lte=segment.last.seq
            )
            .order_by("seq")
            .values_list("id", flat=True)
        )
    return ids


def test_a_long_chat_shows_its_latest_messages_and_loads_the_older_ones_above_them(
    alice: User, alice_client: Client
) -> None:
    long = long_chat_create(user_id=alice.id, count=230, alternative_every=15)

    page = alice_client.get(f"/c/{long.chat.id}/").content.decode()

    assert _shown(page) == long.route[-WINDOW:]
    assert f'name="parent" value="{long.route[-1]}"' in page
    seen = _shown(page)
    loader = _loader(page, "before")
    while loader is not None:
        # As chat.js does: with the tree version the page shows.
        url = f"{loader}&version={long.chat.tree_version}"
        part = alice_client.get(url, headers=HX).content.decode()
        assert _loader(part, "after") is None, "the page has what is below already"
        seen = _shown(part) + seen
        loader = _loader(part, "before")
    assert seen == long.route
    assert _loader(page, "after") is None


def test_the_page_makes_the_same_statements_for_10_and_2000_messages(
    alice: User, alice_client: Client
) -> None:
    counts = []
    for size in (10, 2000):
        long = long_chat_create(user_id=alice.id, count=size, alternative_every=15)
        alice_client.get(f"/c/{long.chat.id}/")  # sessions and caches warm
        with CaptureQueriesContext(connection) as captured:
            response = alice_client.get(f"/c/{long.chat.id}/")
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_a_version_switch_near_the_top_answers_with_what_follows_it(
    alice: User, alice_client: Client
) -> None:
    long = long_chat_create(user_id=alice.id, count=400, alternative_every=15)
    other = long.alternatives[15]
    chat = long.chat
    chat.refresh_from_db()

    response = alice_client.post(
        f"/c/{chat.id}/m/{other}/select", {"version": chat.tree_version}, headers=HX
    )

    assert response.status_code == 200
    # Placed after the version's parent; the other version is a leaf, so it ends the route.
    assert response["Vero-Replace-After"] == str(long.route[14])
    assert _shown(response.content.decode()) == [other]
    assert _route(chat) == [*long.route[:15], other]

    # And back: the original continuation, a window of it, the rest below on scrolling.
    response = alice_client.post(
        f"/c/{chat.id}/m/{long.route[15]}/select", {"version": chat.tree_version}, headers=HX
    )
    body = response.content.decode()
    assert response["Vero-Replace-After"] == str(long.route[14])
    assert _shown(body) == long.route[15 : 15 + WINDOW]
    loader = _loader(body, "after")
    assert loader is not None
    chat.refresh_from_db()
    more = alice_client.get(f"{loader}&version={chat.tree_version}", headers=HX)
    assert _shown(more.content.decode()) == long.route[65 : 65 + WINDOW]
    # From a page that missed a change since, the loader brings the whole body instead.
    stale = alice_client.get(f"{loader}&version={chat.tree_version - 1}", headers=HX)
    assert stale["HX-Retarget"] == "#chat-body"
    assert 'data-version-input hx-swap-oob="outerHTML:[data-version-input]"' in body


def test_a_page_that_missed_another_tabs_change_gets_the_whole_conversation(
    alice: User, alice_client: Client
) -> None:
    long = long_chat_create(user_id=alice.id, count=100, alternative_every=15)
    chat = long.chat
    chat.refresh_from_db()
    stale = chat.tree_version
    message_select(chat=chat, message=Message.objects.get(id=long.alternatives[30]))

    response = alice_client.post(
        f"/c/{chat.id}/m/{long.route[45]}/select", {"version": stale}, headers=HX
    )

    assert response["HX-Retarget"] == "#chat-body"
    assert "Vero-Replace-After" not in response
    assert _shown(response.content.decode()) == _route(chat)[-WINDOW:]


@pytest.mark.django_db(transaction=True)
def test_a_send_from_a_tab_that_missed_a_version_switch_is_shown(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    long = long_chat_create(user_id=alice.id, count=40, alternative_every=15)
    chat = long.chat
    chat.refresh_from_db()
    stale = chat.tree_version  # both tabs show the route ending at long.route[-1]
    message_select(chat=chat, message=Message.objects.get(id=long.alternatives[30]))  # tab B
    fake_llm.enqueue(Script(text="An answer."))

    response = send(
        alice_client, "From tab A", fake_model, chat_id=chat.id, parent=str(long.route[-1]),
        version=str(stale), headers=HX,
    )  # fmt: skip

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#chat-body"
    question = Message.objects.get(chat=chat, parts__0__text="From tab A")
    answer = Message.objects.get(parent_id=question.id)
    wait_for_answer(answer.id)
    assert _route(chat) == [*long.route, question.id, answer.id]
    assert "From tab A" in alice_client.get(f"/c/{chat.id}/").content.decode()


def test_a_send_whose_parent_another_tab_deleted_is_refused_with_a_clear_message(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    long = long_chat_create(user_id=alice.id, count=6)
    chat = long.chat
    chat.refresh_from_db()
    message_delete_single(chat=chat, message=Message.objects.get(id=long.route[-1]))

    response = send(
        alice_client, "Late", fake_model, chat_id=chat.id, parent=str(long.route[-1]),
        version=str(chat.tree_version - 1), headers=HX,
    )  # fmt: skip

    assert response.status_code == 404
    assert "deleted in another tab" in response.content.decode()
    assert not Message.objects.filter(chat=chat, parts__0__text="Late").exists()


def _rows_written() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(pg_stat_get_xact_tuples_inserted(c.oid) + "
            "pg_stat_get_xact_tuples_updated(c.oid) + pg_stat_get_xact_tuples_deleted(c.oid)) "
            "FROM pg_class c WHERE c.relname IN ('chats_chat', 'chats_branch', 'chats_message')"
        )
        return int(cursor.fetchone()[0] or 0)


def test_deleting_one_message_near_the_top_of_a_long_chat_moves_nothing_that_stays(
    alice: User,
) -> None:
    long = long_chat_create(user_id=alice.id, count=3000, alternative_every=15)
    chat = long.chat
    before = dict(Message.objects.filter(chat=chat).values_list("id", "seq"))

    with transaction.atomic():
        start = _rows_written()
        message_delete_single(chat=chat, message=Message.objects.get(id=long.route[4]))
        written = _rows_written() - start

    # The message, its successor's parent link, the chat: never the rest of the branch.
    assert written <= 5
    after = dict(Message.objects.filter(chat=chat).values_list("id", "seq"))
    del before[long.route[4]]
    assert after == before
    assert _route(chat) == [*long.route[:4], *long.route[5:]]


def test_edit_forms_and_the_model_list_load_only_when_opened(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    long = long_chat_create(user_id=alice.id, count=60)
    chat = long.chat

    page = alice_client.get(f"/c/{chat.id}/").content.decode()

    assert page.count("<textarea") == 1  # the composer's
    assert page.count("<select") == 1  # the composer's model picker
    answer = long.route[-1]
    edit = alice_client.get(f"/c/{chat.id}/m/{answer}/edit", headers=HX).content.decode()
    assert "<textarea" in edit and "Message 59 says" in edit and "Edit in place" in edit
    models = alice_client.get(f"/c/{chat.id}/m/{answer}/regenerate", headers=HX).content.decode()
    assert "<select" in models and f'value="{fake_model}"' in models


def test_the_map_draws_a_long_branched_chat_as_runs(alice: User, alice_client: Client) -> None:
    long = long_chat_create(user_id=alice.id, count=3000, alternative_every=15)
    chat = long.chat
    chat.refresh_from_db()
    structure = chat_structure_load(chat=chat)
    runs = chat_map(structure=structure, route=structure.route())
    forks = len(long.alternatives)

    page = alice_client.get(f"/c/{chat.id}/").content.decode()
    assert f'hx-get="/c/{chat.id}/map"' in page
    body = alice_client.get(f"/c/{chat.id}/map", headers=HX).content.decode()

    # The main line cut at each branch point, and each alternative: not one node per message.
    assert len(runs) == 2 * forks + 1
    assert body.count('class="tree-node') == len(runs)
    on_route = [run for run in runs if run.on_route]
    assert [run.first.id for run in on_route][:2] == [str(long.route[0]), str(long.route[15])]
    assert sum(run.length for run in on_route) == 3000


def test_regenerate_is_not_offered_where_it_would_always_be_refused(
    alice: User, alice_client: Client
) -> None:
    long = long_chat_create(user_id=alice.id, count=4)
    chat = long.chat
    # The first question goes: its answer begins the chat and has no question to answer.
    message_delete_single(chat=chat, message=Message.objects.get(id=long.route[0]))

    page = alice_client.get(f"/c/{chat.id}/").content.decode()

    start, end = page.index(f'id="m-{long.route[1]}"'), page.index(f'id="m-{long.route[2]}"')
    first_answer = page[start:end]
    assert "/regenerate" not in first_answer
    later = page[page.index(f'id="m-{long.route[3]}"') :]
    assert "/regenerate" in later


def test_switching_to_a_version_another_tab_deletes_meanwhile_is_refused_in_words(
    alice: User, alice_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = long_chat_create(user_id=alice.id, count=40, alternative_every=15)
    chat = long.chat
    other = Message.objects.get(id=long.alternatives[30])

    def other_tab_deletes(*, chat: Chat) -> bool:  # after the view found the message
        message_delete_single(chat=chat, message=other)
        return False

    monkeypatch.setattr("chats.turn_services.chat_is_generating", other_tab_deletes)
    response = alice_client.post(
        f"/c/{chat.id}/m/{other.id}/select", {"version": chat.tree_version}, headers=HX
    )

    assert response.status_code == 409
    assert "no longer exists" in response.content.decode()
    assert _route(chat) == long.route


def test_the_new_reads_refuse_other_users_ids_and_malformed_input(
    alice: User, bob: User, alice_client: Client
) -> None:
    mine = long_chat_create(user_id=alice.id, count=60)
    theirs = long_chat_create(user_id=bob.id, count=60)
    other, message = theirs.chat.id, theirs.route[-1]

    for url in (
        f"/c/{other}/map",
        f"/c/{other}/messages?before={message}",
        f"/c/{other}/m/{message}/edit",
        f"/c/{other}/m/{message}/regenerate",
        f"/c/{mine.chat.id}/messages?before={message}",  # a message of another chat
    ):
        assert alice_client.get(url, headers=HX).status_code == 404, url
    for query in ("before=not-a-uuid", "after=", ""):
        response = alice_client.get(f"/c/{mine.chat.id}/messages?{query}", headers=HX)
        assert response.status_code == 400, query
    # A version that is not a number is no version: the page gets the whole body.
    response = alice_client.get(
        f"/c/{mine.chat.id}/messages?before={mine.route[-1]}&version=abc", headers=HX
    )
    assert response["HX-Retarget"] == "#chat-body"
