"""A chat's settings: the tools it allows, changed by merging (never by writing the whole
object), so two tabs changing different settings at once both win; bad input changes nothing;
someone else's chat is not found; a new chat takes the tools its composer staged."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.models import User
from chats.models import Chat, Message
from chats.services import chat_settings_update, message_send
from tests.chats.helpers import send, wait_for_answer
from tests.helpers import events_listen, fake_model_register
from tests.live_http import HttpSession
from tests.live_server import LiveServer, live_server_start
from tools.registry import TOOL_GROUPS

MODEL = "fake:fake-model"
ROUNDS = 12


def _settings_post(client: Client, chat: Chat, body: bytes | str) -> Any:
    return client.post(f"/c/{chat.id}/settings", body, content_type="application/json")


@pytest.fixture
def alices_chat(alice: User) -> Chat:
    turn = message_send(user_id=alice.id, chat=None, text="Hello", model_id=MODEL)
    Message.objects.filter(id=turn.answer.id).update(status=Message.Status.COMPLETE)
    Chat.objects.filter(id=turn.chat.id).update(
        settings={"model": MODEL, "reasoning_effort": "low"}
    )
    return Chat.objects.get(id=turn.chat.id)


# ---------------------------------------------------------------------------------------------
# One tab


@pytest.mark.django_db
def test_alice_allows_two_tool_groups_and_the_other_settings_stay(
    alice_client: Client, alices_chat: Chat
) -> None:
    response = _settings_post(alice_client, alices_chat, b'{"tools": ["weather", "code"]}')

    assert response.status_code == 200
    expected = {"model": MODEL, "reasoning_effort": "low", "tools": ["code", "weather"]}
    assert response.json() == {"settings": expected}
    alices_chat.refresh_from_db()
    assert alices_chat.settings == expected


@pytest.mark.django_db
def test_alice_allows_no_tool_group_at_all(alice_client: Client, alices_chat: Chat) -> None:
    response = _settings_post(alice_client, alices_chat, b'{"tools": []}')

    assert response.status_code == 200
    alices_chat.refresh_from_db()
    assert alices_chat.settings["tools"] == []


@pytest.mark.django_db(transaction=True)
def test_a_change_of_settings_tells_alices_other_devices(alice: User, alices_chat: Chat) -> None:
    with events_listen() as events:
        chat_settings_update(chat_id=alices_chat.id, user_id=alice.id, patch={"tools": ["code"]})
        received = events.received()

    assert [(event["kind"], event["chat"]) for event in received] == [
        ("chat.updated", str(alices_chat.id))
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"tools=code", "The change must be a JSON object."),
        (b'["code"]', "Chat settings are changed with a JSON object."),
        (b"{}", "Say which chat setting to change."),
        (
            b'{"model": "evil:model"}',
            "Unknown chat setting 'model': only tools can be changed here.",
        ),
        (b'{"tools": "code"}', "tools must be a list of tool groups."),
        (b'{"tools": [1]}', "tools must be a list of tool groups."),
        (
            b'{"tools": ["code", "shell"]}',
            "Unknown tool group 'shell': the groups are archive, chat_tree, code, weather.",
        ),
        (b'{"tools": ["' + b"x" * 5000 + b'"]}', "This change is too large."),
    ],
)
def test_a_bad_change_is_refused_with_its_reason_and_changes_nothing(
    alice_client: Client, alices_chat: Chat, body: bytes, error: str
) -> None:
    before = dict(alices_chat.settings)

    response = _settings_post(alice_client, alices_chat, body)

    assert response.status_code == 400
    assert response.json() == {"error": error}
    alices_chat.refresh_from_db()
    assert alices_chat.settings == before


@pytest.mark.django_db
def test_bob_cannot_change_alices_chat_settings(bob_client: Client, alices_chat: Chat) -> None:
    before = dict(alices_chat.settings)

    response = _settings_post(bob_client, alices_chat, b'{"tools": []}')

    assert response.status_code == 404
    alices_chat.refresh_from_db()
    assert alices_chat.settings == before


@pytest.mark.django_db
def test_the_settings_endpoint_takes_only_posts(alice_client: Client, alices_chat: Chat) -> None:
    assert alice_client.get(f"/c/{alices_chat.id}/settings").status_code == 405


@pytest.mark.django_db
def test_the_settings_endpoint_needs_the_csrf_token(alice: User, alices_chat: Chat) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = _settings_post(client, alices_chat, b'{"tools": []}')

    assert response.status_code == 403
    alices_chat.refresh_from_db()
    assert "tools" not in alices_chat.settings


# ---------------------------------------------------------------------------------------------
# The send


@pytest.mark.django_db(transaction=True)
def test_a_new_chat_takes_the_tools_its_composer_staged(
    alice_client: Client, alice: User, fake_model: str
) -> None:
    send(alice_client, "Hi", fake_model, tools=["weather"], tools_staged="1")

    chat = Chat.objects.get(user=alice)
    assert chat.settings == {"model": fake_model, "tools": ["weather"]}
    wait_for_answer(chat.messages.get(role="assistant").id)


@pytest.mark.django_db(transaction=True)
def test_a_new_chat_whose_tools_were_not_touched_allows_every_group(
    alice_client: Client, alice: User, fake_model: str
) -> None:
    # The composer's boxes are all ticked, but nothing was staged: no setting (all groups,
    # including any added later).
    send(alice_client, "Hi", fake_model, tools=list(TOOL_GROUPS))

    chat = Chat.objects.get(user=alice)
    assert chat.settings == {"model": fake_model}
    wait_for_answer(chat.messages.get(role="assistant").id)


@pytest.mark.django_db(transaction=True)
def test_a_new_chat_with_an_unknown_tool_group_is_refused_and_not_created(
    alice_client: Client, alice: User, fake_model: str
) -> None:
    response = send(alice_client, "Hi", fake_model, tools=["shell"], tools_staged="1")

    assert response.status_code == 400
    assert "Unknown tool group shell." in response.content.decode()
    assert not Chat.objects.filter(user=alice).exists()


@pytest.mark.django_db(transaction=True)
def test_a_send_in_an_existing_chat_keeps_its_tools_and_ignores_the_composers(
    alice_client: Client, alice: User, fake_model: str
) -> None:
    send(alice_client, "Hi", fake_model)
    chat = Chat.objects.get(user=alice)
    wait_for_answer(chat.messages.get(role="assistant").id)
    chat_settings_update(chat_id=chat.id, user_id=alice.id, patch={"tools": ["code"]})

    send(alice_client, "Again", fake_model, chat.id, tools=[], tools_staged="1")

    chat.refresh_from_db()
    assert chat.settings == {"model": fake_model, "tools": ["code"]}
    for answer in chat.messages.filter(role="assistant"):
        wait_for_answer(answer.id)


@pytest.mark.django_db
@pytest.mark.parametrize("general_path", [False, True])
def test_a_send_from_a_page_loaded_before_a_tools_change_keeps_that_change(
    alice: User, alices_chat: Chat, general_path: bool
) -> None:
    """The chat the send holds was read before another tab saved its tools: the send merges
    what it changes (the model, the effort), whichever of its paths it takes."""
    stale = Chat.objects.get(id=alices_chat.id)
    chat_settings_update(chat_id=alices_chat.id, user_id=alice.id, patch={"tools": ["archive"]})

    # Under the first question, whose branch goes on: a new branch (the general path).
    question = alices_chat.messages.get(role="user") if general_path else None
    turn = message_send(
        user_id=alice.id, chat=stale, text="Next", model_id="fake:other-model",
        reasoning_effort="high", parent_id=question.id if question else None,
    )  # fmt: skip

    expected = {"model": "fake:other-model", "reasoning_effort": "high", "tools": ["archive"]}
    assert turn.reshow is general_path
    assert Chat.objects.get(id=alices_chat.id).settings == expected
    assert turn.chat.settings == expected  # what the response renders (the composer's menu)


# ---------------------------------------------------------------------------------------------
# Two tabs at once, over real HTTP


@pytest.fixture
def two_tabs(alice: User, fake_llm: Any, transactional_db: None) -> Iterator[list[HttpSession]]:
    """Two logged-in tabs of alice's on a live server, as the two-tab race tests have them."""
    fake_model_register(fake_llm.base_url)
    server: LiveServer = live_server_start()
    try:
        tabs = []
        for _ in range(2):
            client = Client()
            client.force_login(alice)
            tab = HttpSession(server.url)
            tab.cookie_set(
                settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
            )
            tab.get("/")  # the CSRF cookie, as the first visit sets it
            tabs.append(tab)
        yield tabs
    finally:
        server.stop()


def _answers_settled(chat_id: uuid.UUID, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while Message.objects.filter(chat_id=chat_id, status=Message.Status.STREAMING).exists():
        assert time.monotonic() < deadline, "an answer is still streaming"
        time.sleep(0.02)


def _stored_settings(chat_id: uuid.UUID) -> dict[str, Any]:
    # Read fresh, outside any cached instance.
    with connection.cursor() as cursor:
        cursor.execute("SELECT settings FROM chats_chat WHERE id = %s", [chat_id])
        value = cursor.fetchone()[0]
    return orjson.loads(value) if isinstance(value, str) else dict(value)


def _send_status(tab: HttpSession, chat_id: uuid.UUID, fields: dict[str, str]) -> int:
    return tab.htmx_post(f"/c/{chat_id}/send", fields).status


def _tools_status(tab: HttpSession, chat_id: uuid.UUID, tools: list[str]) -> int:
    body = orjson.dumps({"tools": tools})
    return tab.post_raw(f"/c/{chat_id}/settings", body, "application/json").status


def _at_once(*requests: Callable[[], int]) -> list[int]:
    """Fire the requests at the same moment, each from a thread of its own; their statuses."""
    barrier = threading.Barrier(len(requests))
    statuses = [0] * len(requests)

    def run(position: int) -> None:
        barrier.wait(10)
        statuses[position] = requests[position]()

    threads = [threading.Thread(target=run, args=(position,)) for position in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def test_two_tabs_changing_different_settings_at_once_both_win(
    alice: User, two_tabs: list[HttpSession]
) -> None:
    """Each round one tab sends (which changes the reasoning effort) while the other changes
    the tools; whatever the order the two writes take, the chat keeps both."""
    sender, chooser = two_tabs
    page = sender.htmx_post("/c/send", {"text": "Let us talk", "model": MODEL})
    assert page.status == 200, page.text
    chat = Chat.objects.get(user=alice)
    _answers_settled(chat.id)
    groups = list(TOOL_GROUPS)
    for number in range(ROUNDS):
        effort = ("low", "medium", "high")[number % 3]
        tools = groups[: number % len(groups)] + groups[number % len(groups) + 1 :]
        version = Chat.objects.get(id=chat.id).tree_version
        fields = {"text": "more", "model": MODEL, "reasoning_effort": effort,
                  "version": str(version)}  # fmt: skip
        statuses = _at_once(
            partial(_send_status, sender, chat.id, fields),
            partial(_tools_status, chooser, chat.id, tools),
        )
        assert statuses == [200, 200], f"round {number}: {statuses}"
        _answers_settled(chat.id)

        stored = _stored_settings(chat.id)
        assert stored.get("reasoning_effort") == effort, f"round {number}: {stored}"
        assert stored.get("tools") == tools, f"round {number}: {stored}"
        assert stored.get("model") == MODEL
