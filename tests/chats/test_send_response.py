"""What a send answers: a new chat's like a follow-up's (the turn), and the meters it changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chats.models import Chat, Message
from tests.chats.helpers import wait_for_answer
from tests.fake_provider import Script

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


def test_a_new_chats_send_answers_with_its_turn_and_the_chats_header_not_a_page(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["Hello."]), Script(text=["A title"]))

    response = alice_client.post("/c/send", {"text": "Hi", "model": fake_model}, headers=HTMX)

    assert response.status_code == 200
    chat = Chat.objects.get()
    answer = Message.objects.get(chat=chat, role="assistant")
    html = response.content.decode()
    assert f'data-stream-url="/c/{chat.id}/m/{answer.id}/stream"' in html
    assert f'data-send-url="/c/{chat.id}/send"' in html  # the composer's next target
    # The chat's header and URL, for chat.js to put in place after the first text.
    assert f'data-chat-started="{chat.id}"' in html
    assert f'data-chat-url="/c/{chat.id}/"' in html
    assert 'class="chat-title-text"' in html
    # Like a follow-up's: the page around the turn is not rendered again.
    assert "data-model-picker" not in html
    assert "HX-Retarget" not in response
    wait_for_answer(answer.id)


def test_without_htmx_a_new_chats_send_redirects_to_the_chat(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["Hello."]), Script(text=["A title"]))

    response = alice_client.post("/c/send", {"text": "Hi", "model": fake_model})

    chat = Chat.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/c/{chat.id}/"
    wait_for_answer(Message.objects.get(chat=chat, role="assistant").id)


def test_every_send_updates_the_meters_on_the_page(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["One."]), Script(text=["A title"]), Script(text=["Two."]))
    first = alice_client.post("/c/send", {"text": "Hi", "model": fake_model}, headers=HTMX)
    chat = Chat.objects.get()
    answer = wait_for_answer(Message.objects.get(chat=chat, role="assistant").id)

    second = alice_client.post(
        f"/c/{chat.id}/send",
        {"text": "Again", "model": fake_model, "parent": str(answer.id)},
        headers=HTMX,
    )

    for response, left in ((first, 99), (second, 98)):
        html = response.content.decode()
        assert 'id="composer-meter"' in html and 'id="ratelimit-meter-platform"' in html
        assert html.count('hx-swap-oob="true"') >= 2
        assert f"{left} / 100 messages left" in html
    wait_for_answer(Message.objects.filter(chat=chat, role="assistant").latest("seq").id)
