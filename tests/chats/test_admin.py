"""The admin's chats, messages and token usage: read-only lists an operator searches and filters.

A chat's page answers "what happened in this chat" (its latest messages, a link to all of
them) and stays small however long the chat is.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chats.admin import RECENT_MESSAGES_SHOWN
from chats.models import Branch, Chat, Message, TokenUsage
from chats.tree_services import first_branch_path
from tests.chats.branching_support import conversation
from vero.lib.db import stamps_kept

pytestmark = pytest.mark.django_db

CHATS = "/admin/chats/chat/"
MESSAGES = "/admin/chats/message/"
USAGE = "/admin/chats/tokenusage/"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
SINCE = "2021-01-01 00:00:00+00:00"  # as the admin's date filter writes it


@pytest.fixture
def alice_chat(alice: User) -> Chat:
    chat = Chat.objects.create(user=alice, title="Jupiter's moons", settings={"model": "m:one"})
    conversation(chat, "How many moons has Jupiter?", "Ninety-five known moons.")
    return chat


@pytest.fixture
def bob_chat(bob: User) -> Chat:
    chat = Chat.objects.create(user=bob, title="Sourdough starter", settings={"model": "m:two"})
    conversation(chat, "Why is my starter flat?", "It is hungry.")
    return chat


def _long_chat(user: User, count: int) -> Chat:
    """A chat of `count` messages in one branch, written in one insert."""
    chat = Chat.objects.create(user=user, title="A very long chat")
    branch = Branch.objects.create(chat=chat, path=first_branch_path())
    ids = [uuid.uuid4() for _ in range(count)]
    Message.objects.bulk_create(
        Message(
            id=message_id,
            chat=chat,
            branch=branch,
            seq=seq,
            parent_id=ids[seq - 1] if seq else None,
            role=Message.Role.USER if seq % 2 == 0 else Message.Role.ASSISTANT,
            parts=[{"type": "text", "text": f"message {seq}"}],
        )
        for seq, message_id in enumerate(ids)
    )
    return chat


def test_a_superuser_sees_every_users_chats(
    admin_client: Client, alice_chat: Chat, bob_chat: Chat
) -> None:
    body = admin_client.get(CHATS).content.decode()

    assert "Jupiter&#x27;s moons" in body and "Sourdough starter" in body
    assert "alice@example.com" in body and "bob@example.com" in body
    assert "m:one" in body and "m:two" in body


def test_chats_are_searched_by_title_and_by_the_users_email(
    admin_client: Client, alice_chat: Chat, bob_chat: Chat
) -> None:
    by_title = admin_client.get(CHATS, {"q": "sourdough"}).content.decode()
    by_email = admin_client.get(CHATS, {"q": "alice@"}).content.decode()

    assert "Sourdough starter" in by_title and "Jupiter" not in by_title
    assert "Jupiter" in by_email and "Sourdough" not in by_email


def test_chats_are_filtered_by_model_and_date(
    admin_client: Client, alice_chat: Chat, bob_chat: Chat
) -> None:
    with stamps_kept():
        Chat.objects.filter(id=alice_chat.id).update(updated_at=LONG_AGO)

    by_model = admin_client.get(CHATS, {"model": "m:two"}).content.decode()
    recent = admin_client.get(CHATS, {"updated_at__gte": SINCE}).content.decode()

    assert "Sourdough starter" in by_model and "Jupiter" not in by_model
    assert "Sourdough starter" in recent and "Jupiter" not in recent


def test_messages_are_listed_searched_and_filtered(
    admin_client: Client, alice_chat: Chat, bob_chat: Chat
) -> None:
    Message.objects.filter(chat=bob_chat, role=Message.Role.ASSISTANT).update(
        status=Message.Status.ERROR, model_id="m:two"
    )

    listed = admin_client.get(MESSAGES).content.decode()
    by_chat_title = admin_client.get(MESSAGES, {"q": "jupiter"}).content.decode()
    by_user = admin_client.get(MESSAGES, {"q": "bob@"}).content.decode()
    by_status = admin_client.get(MESSAGES, {"status__exact": "error"}).content.decode()
    by_model = admin_client.get(MESSAGES, {"model_id": "m:two"}).content.decode()

    assert "How many moons has Jupiter?" in listed and "Why is my starter flat?" in listed
    assert "Ninety-five known moons." in by_chat_title and "starter" not in by_chat_title
    assert "Why is my starter flat?" in by_user and "Jupiter" not in by_user
    assert "It is hungry." in by_status and "flat" not in by_status and "moons" not in by_status
    assert "It is hungry." in by_model and "moons" not in by_model


def test_token_usage_is_listed_searched_by_user_and_filtered_by_model(
    admin_client: Client, alice: User, bob: User, alice_chat: Chat
) -> None:
    TokenUsage.objects.create(
        user=alice, chat_id=alice_chat.id, model_id="m:one", input_tokens=1234,
        output_tokens=56, cost_usd=Decimal("0.00123"),
    )  # fmt: skip
    TokenUsage.objects.create(user=bob, model_id="m:two", input_tokens=4321, output_tokens=65)
    TokenUsage.objects.filter(user=bob).update(created_at=LONG_AGO)

    listed = admin_client.get(USAGE).content.decode()
    by_user = admin_client.get(USAGE, {"q": "alice@"}).content.decode()
    by_model = admin_client.get(USAGE, {"model_id": "m:two"}).content.decode()
    recent = admin_client.get(USAGE, {"created_at__gte": SINCE}).content.decode()

    assert "1234" in listed and "4321" in listed
    assert f"/admin/chats/chat/{alice_chat.id}/change/" in listed
    assert "1234" in by_user and "4321" not in by_user
    assert "4321" in by_model and "1234" not in by_model
    assert "1234" in recent and "4321" not in recent


def test_nothing_can_be_added_changed_or_deleted_through_the_admin(
    admin_client: Client, alice_chat: Chat
) -> None:
    message = Message.objects.filter(chat=alice_chat).first()
    assert message is not None

    assert admin_client.get(f"{CHATS}add/").status_code == 403
    assert admin_client.get(f"{MESSAGES}add/").status_code == 403
    assert admin_client.get(f"{USAGE}add/").status_code == 403
    assert admin_client.get(f"{CHATS}{alice_chat.id}/delete/").status_code == 403
    assert admin_client.get(f"{MESSAGES}{message.id}/delete/").status_code == 403
    page = admin_client.get(f"{MESSAGES}{message.id}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"{MESSAGES}{message.id}/change/", {}).status_code == 403


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(
    alice_client: Client, alice_chat: Chat
) -> None:
    for path in (CHATS, MESSAGES, USAGE, f"{CHATS}{alice_chat.id}/change/"):
        response = alice_client.get(path)

        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_a_chats_page_shows_its_latest_messages_and_links_to_all_of_them(
    admin_client: Client, alice_chat: Chat
) -> None:
    body = admin_client.get(f"{CHATS}{alice_chat.id}/change/").content.decode()

    assert "All 2 messages of this chat" in body
    assert f"{MESSAGES}?chat__id__exact={alice_chat.id}" in body
    assert "Ninety-five known moons." in body and "How many moons has Jupiter?" in body


def test_a_ten_thousand_message_chats_page_stays_small(admin_client: Client, alice: User) -> None:
    chat = _long_chat(alice, 10_000)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(f"{CHATS}{chat.id}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "All 10000 messages of this chat" in body
    assert body.count('class="chat-message"') == RECENT_MESSAGES_SHOWN
    assert "message 9999" in body and "message 0<" not in body
    assert len(queries) <= 10  # 6 when written, whatever the chat's length
    assert len(body) < 100_000


def test_a_long_chats_messages_are_listed_a_page_at_a_time(
    admin_client: Client, alice: User
) -> None:
    chat = _long_chat(alice, 10_000)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(MESSAGES, {"chat__id__exact": str(chat.id)})

    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('class="field-role"') == 100  # one page of the admin's 100 rows
    assert len(queries) <= 15
