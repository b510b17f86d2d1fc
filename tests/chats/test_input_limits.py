"""Every path that takes a message's text obeys the send's limits, and a refusal changes nothing.

Over the test client as alice: a refused send, edit (each mode), regenerate or rename answers
400 with the reason, writes nothing and sends nothing to the provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from chats.models import Chat, Message
from tests.chats.helpers import send, wait_for_answer, wait_for_title
from tests.fake_provider import FakeProvider, Script

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HX-Request": "true"}
TOO_LONG = "x" * 100_000  # what the version edit sent to the provider
HUGE = "y" * 2_000_000  # what the in-place edit stored


def _chat_with_answer(client: Client, model: str, fake_llm: FakeProvider) -> Chat:
    fake_llm.enqueue(Script(text="First answer."), Script(text="Title"))
    send(client, "Question?", model)
    chat = Chat.objects.get()
    wait_for_answer(chat.messages.get(role="assistant").id)
    wait_for_title(chat, "Title")  # the title call is the last one this chat makes by itself
    return chat


def _state() -> tuple[list[Any], list[Any]]:
    chats = list(Chat.objects.order_by("created_at").values_list("id", "title"))
    messages = list(
        Message.objects.order_by("created_at").values_list(
            "id", "parts", "status", "selected_child_index"
        )
    )
    return chats, messages


def _question(chat: Chat) -> Message:
    return chat.messages.get(role="user")


def _answer(chat: Chat) -> Message:
    return chat.messages.get(role="assistant")


Post = Callable[[Client, Chat, str], Any]

PATHS: dict[str, Post] = {
    "send": lambda client, chat, model: client.post(
        f"/c/{chat.id}/send", {"text": TOO_LONG, "model": model}, headers=HX
    ),
    "new-chat": lambda client, chat, model: client.post(
        "/c/send", {"text": TOO_LONG, "model": model}, headers=HX
    ),
    "version-edit": lambda client, chat, model: client.post(
        f"/c/{chat.id}/m/{_question(chat).id}/edit",
        {"text": TOO_LONG, "mode": "version"},
        headers=HX,
    ),
    "in-place-edit": lambda client, chat, model: client.post(
        f"/c/{chat.id}/m/{_question(chat).id}/edit", {"text": HUGE, "mode": "in_place"}, headers=HX
    ),
    "in-place-edit-of-an-answer": lambda client, chat, model: client.post(
        f"/c/{chat.id}/m/{_answer(chat).id}/edit", {"text": HUGE, "mode": "in_place"}, headers=HX
    ),
    "answer-version-edit": lambda client, chat, model: client.post(
        f"/c/{chat.id}/m/{_answer(chat).id}/edit", {"text": TOO_LONG, "mode": "version"}, headers=HX
    ),
    "fork-edit": lambda client, chat, model: client.post(
        f"/c/{chat.id}/m/{_question(chat).id}/edit", {"text": TOO_LONG, "mode": "fork"}, headers=HX
    ),
    "regenerate-with-a-huge-model-name": lambda client, chat, model: client.post(
        f"/c/{chat.id}/m/{_answer(chat).id}/regenerate", {"model": TOO_LONG}, headers=HX
    ),
    "version-edit-with-a-huge-model-name": lambda client, chat, model: client.post(
        f"/c/{chat.id}/m/{_question(chat).id}/edit",
        {"text": "Short.", "mode": "version", "model": TOO_LONG},
        headers=HX,
    ),
    "rename": lambda client, chat, model: client.post(
        f"/c/{chat.id}/rename", {"title": TOO_LONG}, headers=HX
    ),
}


@pytest.mark.parametrize("path", PATHS)
def test_an_overlong_input_is_refused_with_a_clear_error_and_changes_nothing(
    alice_client: Client, fake_model: str, fake_llm: FakeProvider, path: str
) -> None:
    chat = _chat_with_answer(alice_client, fake_model, fake_llm)
    before, requests_before = _state(), len(fake_llm.chat_requests)

    response = PATHS[path](alice_client, chat, fake_model)

    assert response.status_code == 400
    body = response.content.decode()
    assert "too long" in body or "model does not exist" in body or "at most" in body
    assert response["HX-Retarget"] == "#composer-error"
    assert _state() == before
    assert len(fake_llm.chat_requests) == requests_before  # nothing reached the provider


def test_the_limit_is_the_same_for_a_send_and_an_edit(
    alice_client: Client, fake_model: str, fake_llm: FakeProvider
) -> None:
    chat = _chat_with_answer(alice_client, fake_model, fake_llm)
    limit = settings.MAX_MESSAGE_LENGTH
    question = _question(chat)

    at_limit = alice_client.post(
        f"/c/{chat.id}/m/{question.id}/edit", {"text": "z" * limit, "mode": "in_place"}, headers=HX
    )
    over = alice_client.post(
        f"/c/{chat.id}/m/{question.id}/edit",
        {"text": "z" * (limit + 1), "mode": "in_place"},
        headers=HX,
    )

    assert at_limit.status_code == 200
    assert over.status_code == 400
    assert f"Your message is too long: the limit is {limit:,} characters." in over.content.decode()
    assert Message.objects.get(id=question.id).text == "z" * limit


def test_a_body_larger_than_django_reads_is_a_clean_400(
    alice_client: Client, fake_model: str, fake_llm: FakeProvider
) -> None:
    chat = _chat_with_answer(alice_client, fake_model, fake_llm)
    before = _state()
    huge = "w" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = alice_client.post(
        f"/c/{chat.id}/m/{_question(chat).id}/edit", {"text": huge, "mode": "in_place"}, headers=HX
    )

    assert response.status_code == 400
    assert _state() == before
