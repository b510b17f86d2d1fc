"""Chat pages: ownership, the sidebar, rename, delete with a tombstone, the guest's move."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chats.models import Chat, ChatDeletion, Message, TokenUsage
from chats.services import message_send
from tests.helpers import PASSWORD, client_for_guest
from vero.lib.db import stamps_kept

pytestmark = pytest.mark.django_db

MODEL = "fake:fake-model"


@pytest.fixture
def alices_chat(alice: User) -> Chat:
    turn = message_send(user_id=alice.id, chat=None, text="Alice's secret plan", model_id=MODEL)
    Message.objects.filter(id=turn.answer.id).update(
        status="complete", parts=[{"type": "text", "text": "Noted."}], html="<p>Noted.</p>"
    )
    return turn.chat


def _urls(chat: Chat) -> list[tuple[str, str]]:
    answer = chat.messages.get(role="assistant")
    base = f"/c/{chat.id}"
    return [
        ("get", f"{base}/"),
        ("get", f"{base}/m/{answer.id}/"),
        ("get", f"{base}/m/{answer.id}/stream"),
        ("post", f"{base}/m/{answer.id}/stop"),
        ("post", f"{base}/m/{answer.id}/retry"),
        ("post", f"{base}/rename"),
        ("get", f"{base}/delete"),
        ("post", f"{base}/delete"),
        ("post", f"{base}/send"),
    ]


def test_every_chat_endpoint_answers_404_for_another_users_chat(
    alices_chat: Chat, bob_client: Client
) -> None:
    for method, url in _urls(alices_chat):
        data = {"text": "hi", "model": MODEL, "title": "mine now"}
        response = (
            getattr(bob_client, method)(url, data) if method == "post" else bob_client.get(url)
        )
        assert response.status_code == 404, (method, url, response.content[:300])
    alices_chat.refresh_from_db()
    assert alices_chat.title == "Alice's secret plan"
    assert alices_chat.messages.count() == 2


def test_every_chat_endpoint_answers_404_for_a_guest(alices_chat: Chat, client: Client) -> None:
    for method, url in _urls(alices_chat):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url)


def test_a_message_of_another_chat_is_not_found_through_my_chat(
    alices_chat: Chat, alice: User, alice_client: Client
) -> None:
    other = message_send(user_id=alice.id, chat=None, text="other", model_id=MODEL)
    response = alice_client.get(f"/c/{alices_chat.id}/m/{other.answer.id}/")
    assert response.status_code == 404


def test_the_chat_page_shows_the_conversation(alices_chat: Chat, alice_client: Client) -> None:
    page = alice_client.get(f"/c/{alices_chat.id}/").content.decode()
    assert "Alice&#x27;s secret plan" in page
    assert "<p>Noted.</p>" in page
    answer = alices_chat.messages.get(role="assistant")
    assert f'name="parent" value="{answer.id}"' in page


def test_user_text_is_escaped_not_rendered(alice: User, alice_client: Client) -> None:
    turn = message_send(
        user_id=alice.id, chat=None, text="<script>alert(1)</script>", model_id=MODEL
    )
    page = alice_client.get(f"/c/{turn.chat.id}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_sidebar_groups_chats_by_age_newest_first(alice: User, alice_client: Client) -> None:
    now = timezone.now()
    for title, age in [("old one", 40), ("last week", 3), ("yesterday's", 1), ("today's", 0)]:
        chat = Chat.objects.create(user=alice, title=title)
        with stamps_kept():
            Chat.objects.filter(id=chat.id).update(updated_at=now - timedelta(days=age))
    page = alice_client.get("/").content.decode()
    positions = [page.index(label) for label in ("Today", "Yesterday", "Previous 7 days")]
    assert positions == sorted(positions)
    titles = [page.index(t) for t in ("today&#x27;s", "yesterday&#x27;s", "last week", "old one")]
    assert titles == sorted(titles)


def test_the_sidebar_pages_through_many_chats(
    alice: User, alice_client: Client, settings: object
) -> None:
    Chat.objects.bulk_create([Chat(user=alice, title=f"chat {i:03}") for i in range(120)])
    first = alice_client.get("/c/list").content.decode()
    assert first.count("data-chat-link") == 50
    cursor = first.split("cursor=")[1].split('"')[0]
    second = alice_client.get(f"/c/list?cursor={cursor}").content.decode()
    assert second.count("data-chat-link") == 50
    assert not set(first.split("data-chat-link")) & set(second.split("data-chat-link")[1:])
    assert alice_client.get("/c/list?cursor=garbage").status_code == 200


def test_a_page_of_the_sidebar_that_continues_a_group_repeats_no_heading(
    alice: User, alice_client: Client
) -> None:
    now = timezone.now()
    chats = Chat.objects.bulk_create([Chat(user=alice, title=f"chat {i:03}") for i in range(60)])
    # 55 today, then 5 yesterday: the second page goes on with today's, then starts yesterday's.
    for at, chat in enumerate(chats):
        stamp = now - timedelta(minutes=at) - (timedelta(days=1) if at >= 55 else timedelta())
        with stamps_kept():
            Chat.objects.filter(id=chat.id).update(updated_at=stamp)
    first = alice_client.get("/c/list").content.decode()
    assert first.count('class="chat-group"') == 1 and "Today" in first
    cursor = first.split("cursor=")[1].split('"')[0]
    second = alice_client.get(f"/c/list?cursor={cursor}").content.decode()
    assert second.count('class="chat-group"') == 1
    assert "Today" not in second and "Yesterday" in second


def test_renaming_a_chat(alices_chat: Chat, alice_client: Client) -> None:
    response = alice_client.post(
        f"/c/{alices_chat.id}/rename",
        {"title": "  Weekend   plans "},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "chats-changed"
    alices_chat.refresh_from_db()
    assert alices_chat.title == "Weekend plans"


def test_an_empty_title_is_refused(alices_chat: Chat, alice_client: Client) -> None:
    response = alice_client.post(f"/c/{alices_chat.id}/rename", {"title": ""})
    assert response.status_code == 400
    alices_chat.refresh_from_db()
    assert alices_chat.title == "Alice's secret plan"


def test_deleting_a_chat_asks_first_then_deletes_the_tree_and_leaves_a_tombstone(
    alices_chat: Chat, alice: User, alice_client: Client
) -> None:
    confirm = alice_client.get(f"/c/{alices_chat.id}/delete")
    assert b"Delete this chat?" in confirm.content

    response = alice_client.post(f"/c/{alices_chat.id}/delete")

    assert response.status_code == 302
    assert not Chat.objects.filter(id=alices_chat.id).exists()
    assert not Message.objects.filter(chat_id=alices_chat.id).exists()
    tombstone = ChatDeletion.objects.get()
    assert (tombstone.chat_id, tombstone.user_id) == (alices_chat.id, alice.id)


def test_signing_up_moves_the_guests_chats_usage_and_tombstones(guest: User) -> None:
    turn = message_send(user_id=guest.id, chat=None, text="guest question", model_id=MODEL)
    TokenUsage.objects.create(user=guest, chat_id=turn.chat.id, model_id=MODEL, input_tokens=3)
    ChatDeletion.objects.create(chat_id=turn.chat.id, user=guest)
    client = client_for_guest(guest)

    client.post(
        "/accounts/signup/",
        {"email": "converted@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    account = User.objects.get(email="converted@example.com")
    assert list(Chat.objects.values_list("user_id", flat=True)) == [account.id]
    assert TokenUsage.objects.get().user_id == account.id
    assert ChatDeletion.objects.get().user_id == account.id
    assert not User.objects.filter(id=guest.id).exists()
    assert b"guest question" in client.get(f"/c/{turn.chat.id}/").content


def test_a_missing_chat_shows_a_friendly_not_found_page(
    alices_chat: Chat, bob_client: Client
) -> None:
    response = bob_client.get(f"/c/{alices_chat.id}/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Not found" in page
    assert "Start a new chat" in page
    assert "Alice&#x27;s secret plan" not in page
