"""Generated titles: checked before they are stored, and polled by the page until they arrive."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chats.models import Chat, Message
from chats.selectors import chat_title_awaited
from chats.services import message_send, title_clean
from chats.worker import _worker
from tests.chats.helpers import send, wait_for_answer
from tests.fake_provider import Script
from vero.lib.db import stamps_kept

MODEL = "fake:fake-model"
QUESTION = "Help me plan a relaxing weekend in the mountains"


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("Weekend plans", "Weekend plans"),
        ("  Weekend   plans.\n", "Weekend plans"),
        ("Python's GIL explained", "Python's GIL explained"),
        ("x" * 80, "x" * 80),
    ],
)
def test_a_title_that_follows_the_instruction_is_kept(raw: str, title: str) -> None:
    assert title_clean(raw) == title


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   \n ",
        "Weekend plans\nA relaxing trip to the mountains",
        "x" * 81,
        "Title: Weekend plans",
        "**Title:** Weekend plans",
        "title : weekend plans",
        '"Weekend plans"',
        "“Weekend plans”",
        "'Weekend plans'",
        "**Weekend plans**",
        "# Weekend plans",
        "- Weekend plans",
        "`Weekend plans`",
        "Weekend [plans](https://example.com)",
        ".",
    ],
)
def test_a_title_that_ignores_the_instruction_is_refused(raw: str) -> None:
    assert title_clean(raw) is None


def _generation_idle(timeout: float = 15.0) -> None:
    """Wait until no answer (and so no title after it) is being generated in this process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(task.get_coro().__name__ == "_generate" for task in list(_worker.tasks)):  # type: ignore[union-attr]
            return
        time.sleep(0.05)
    raise AssertionError(f"generation still running after {timeout} s")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("reply", "stored"),
    [
        pytest.param("Title: **Weekend plans**", QUESTION, id="a bad title keeps the fallback"),
        pytest.param("Weekend plans.", "Weekend plans", id="a good title replaces it"),
    ],
)
def test_the_generated_title_is_stored_only_when_it_is_fit(
    alice_client: Client, fake_model: str, fake_llm: Any, reply: str, stored: str
) -> None:
    fake_llm.enqueue(Script(text="Sure, here it is."), Script(text=reply))
    send(alice_client, QUESTION, fake_model)
    chat = Chat.objects.get()
    wait_for_answer(chat.messages.get(role="assistant").id)
    fake_llm.wait_for_requests(2)

    _generation_idle()

    chat.refresh_from_db()
    assert chat.title == stored


@pytest.fixture
def new_chat(alice: User) -> Chat:
    """Alice's new chat: one question, its answer still generating, the fallback title."""
    return message_send(user_id=alice.id, chat=None, text=QUESTION, model_id=MODEL).chat


def _answer(chat: Chat) -> Message:
    return chat.messages.get(role="assistant")


def _finish(chat: Chat, *, ago: timedelta) -> None:
    with stamps_kept():
        Message.objects.filter(id=_answer(chat).id).update(
            status="complete", updated_at=timezone.now() - ago
        )


@pytest.mark.django_db
def test_a_title_is_awaited_while_the_first_answer_generates_and_just_after(
    new_chat: Chat,
) -> None:
    assert chat_title_awaited(chat=new_chat)
    _finish(new_chat, ago=timedelta(seconds=2))
    assert chat_title_awaited(chat=new_chat)


@pytest.mark.django_db
def test_no_title_is_awaited_once_the_title_task_has_given_up(new_chat: Chat) -> None:
    _finish(new_chat, ago=timedelta(minutes=5))
    assert not chat_title_awaited(chat=new_chat)


@pytest.mark.django_db
def test_no_title_is_awaited_once_the_chat_has_a_title_of_its_own(new_chat: Chat) -> None:
    Chat.objects.filter(id=new_chat.id).update(title="Weekend plans")
    new_chat.refresh_from_db()
    assert not chat_title_awaited(chat=new_chat)


@pytest.mark.django_db
def test_no_title_is_awaited_once_the_chat_has_a_second_turn(new_chat: Chat) -> None:
    _finish(new_chat, ago=timedelta(seconds=2))
    message_send(user_id=new_chat.user_id, chat=new_chat, text="And then?", model_id=MODEL)
    assert not chat_title_awaited(chat=new_chat)


@pytest.mark.django_db
def test_no_title_is_awaited_for_a_failed_first_answer(new_chat: Chat) -> None:
    Message.objects.filter(id=_answer(new_chat).id).update(status="error")
    assert not chat_title_awaited(chat=new_chat)


@pytest.mark.django_db
def test_the_page_of_a_new_chat_polls_its_title(new_chat: Chat, alice_client: Client) -> None:
    page = alice_client.get(f"/c/{new_chat.id}/").content.decode()
    assert f'hx-get="/c/{new_chat.id}/title"' in page


@pytest.mark.django_db
def test_the_page_of_a_titled_chat_does_not_poll(new_chat: Chat, alice_client: Client) -> None:
    _finish(new_chat, ago=timedelta(minutes=5))
    page = alice_client.get(f"/c/{new_chat.id}/").content.decode()
    assert f"/c/{new_chat.id}/title" not in page
    assert "data-title-awaited" not in page


@pytest.mark.django_db
def test_a_title_poll_answers_the_header_and_the_document_title(
    new_chat: Chat, alice_client: Client
) -> None:
    waiting = alice_client.get(f"/c/{new_chat.id}/title", headers={"HX-Request": "true"})
    assert waiting.status_code == 200
    assert "data-title-awaited" in waiting.content.decode()
    assert "HX-Trigger" not in waiting

    Chat.objects.filter(id=new_chat.id).update(title="Weekend plans")
    arrived = alice_client.get(f"/c/{new_chat.id}/title", headers={"HX-Request": "true"})

    body = arrived.content.decode()
    assert '<h1 class="chat-title-text" title="Weekend plans">Weekend plans</h1>' in body
    assert "<title>Weekend plans · Vero</title>" in body
    assert "data-title-awaited" not in body
    assert arrived["HX-Trigger"] == "chats-changed"


@pytest.mark.django_db
def test_a_title_poll_for_another_users_chat_is_not_found(
    new_chat: Chat, bob_client: Client
) -> None:
    assert bob_client.get(f"/c/{new_chat.id}/title").status_code == 404


@pytest.mark.django_db
def test_renaming_also_answers_the_document_title(new_chat: Chat, alice_client: Client) -> None:
    response = alice_client.post(
        f"/c/{new_chat.id}/rename", {"title": "Mountains"}, headers={"HX-Request": "true"}
    )
    assert "<title>Mountains · Vero</title>" in response.content.decode()
