"""Sending: everything is checked first, then one transaction, then the answer is generated."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from chats.models import Chat, Message, TokenUsage
from ratelimit.models import UserRateLimit
from tests.chats.helpers import send, wait_for_answer, wait_for_title
from tests.fake_provider import Script
from tests.helpers import client_for_guest

pytestmark = pytest.mark.django_db(transaction=True)


def _only_answer() -> Message:
    return Message.objects.get(role=Message.Role.ASSISTANT)


def test_a_guest_sends_a_first_message_and_gets_the_whole_answer(
    client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(
        Script(text=["Paris ", "is ", "the ", "capital."], prompt_tokens=12, completion_tokens=4)
    )
    response = send(client, "What is the capital of France?", fake_model)
    assert response.status_code == 302
    chat = Chat.objects.get()
    assert response["Location"] == f"/c/{chat.id}/"
    assert chat.user.is_guest
    assert chat.title == "What is the capital of France?"
    question, placeholder = chat.messages.order_by("seq")
    assert (question.role, question.text, question.status) == (
        "user",
        "What is the capital of France?",
        "complete",
    )
    assert (placeholder.parent_id, placeholder.model_id) == (question.id, fake_model)

    answer = wait_for_answer(placeholder.id)

    assert answer.status == "complete"
    assert answer.text == "Paris is the capital."
    assert "<p>Paris is the capital.</p>" in answer.html
    assert answer.usage is not None
    assert answer.usage["input_tokens"] == 12
    usage = TokenUsage.objects.get()
    assert (usage.input_tokens, usage.output_tokens, usage.user_id) == (12, 4, chat.user_id)
    # 12 in at $1/M + 4 out at $2/M
    assert usage.cost_usd == Decimal("0.00002000")
    sent = fake_llm.chat_requests[0].json
    assert sent["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert sent["stream"] is True


def test_the_context_is_the_route_to_the_question_with_preferences_first(
    alice_client: Client, alice: User, fake_model: str, fake_llm: Any
) -> None:
    User.objects.filter(id=alice.id).update(occupation="Pilot")
    send(alice_client, "one", fake_model)
    chat = Chat.objects.get()
    wait_for_answer(_only_answer().id)
    leaf = chat.messages.get(role="assistant")
    fake_llm.reset()

    send(alice_client, "two", fake_model, chat_id=chat.id, parent=str(leaf.id))
    second = chat.messages.filter(role="assistant").order_by("-created_at").first()
    assert second is not None
    wait_for_answer(second.id)

    (request,) = [r for r in fake_llm.chat_requests if r.json["messages"][-1]["content"] == "two"]
    messages = request.json["messages"]
    assert messages[0]["role"] == "system"
    assert "Alice" in messages[0]["content"] and "Pilot" in messages[0]["content"]
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "one"),
        ("assistant", leaf.text),
        ("user", "two"),
    ]


def test_a_new_chat_gets_a_generated_title(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text="Sure, here it is."), Script(text=["Weekend ", "plans"]))
    send(alice_client, "Help me plan a relaxing weekend in the mountains", fake_model)
    wait_for_answer(_only_answer().id)
    wait_for_title(Chat.objects.get(), "Weekend plans")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "", "model": "fake:fake-model"}, "Write a message first."),
        ({"text": "hi", "model": ""}, "Choose a model."),
        ({"text": "hi", "model": "nobody:nothing"}, "This model does not exist."),
    ],
)
def test_a_bad_send_is_refused_with_a_clear_error_and_creates_nothing(
    alice_client: Client, fake_model: str, data: dict[str, str], message: str
) -> None:
    response = alice_client.post("/c/send", data, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response["HX-Retarget"] == "#composer-error"
    assert Chat.objects.count() == 0
    assert Message.objects.count() == 0


def test_a_too_long_message_is_refused(
    alice_client: Client, fake_model: str, settings: SettingsWrapper
) -> None:
    settings.MAX_MESSAGE_LENGTH = 10
    response = send(alice_client, "x" * 11, fake_model)
    assert response.status_code == 400
    assert "too long: the limit is 10 characters" in response.content.decode()
    assert Message.objects.count() == 0


def test_a_guest_on_a_model_outside_their_tier_is_refused(client: Client, fake_model: str) -> None:
    from models_registry.models import Tier

    Tier.objects.filter(slug="guest").update(includes_all_models=False)
    response = send(client, "hello", fake_model)
    assert response.status_code == 400
    assert "not included in your plan" in response.content.decode()
    assert Chat.objects.count() == 0
    assert User.objects.count() == 0


def test_a_rate_limited_send_answers_429_with_retry_after_and_creates_nothing(
    guest: User, fake_model: str
) -> None:
    from models_registry.models import Tier

    Tier.objects.filter(slug="guest").update(
        bucket_capacity=1, refill_amount=1, refill_interval_seconds=720
    )
    client = client_for_guest(guest)
    send(client, "first", fake_model)
    wait_for_answer(_only_answer().id)

    response = client.post(
        "/c/send", {"text": "second", "model": fake_model}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 720
    assert "Limit reached, next message in 12 min" in response.content.decode()
    assert Chat.objects.count() == 1
    assert Message.objects.count() == 2
    assert UserRateLimit.objects.get(user=guest).tokens == 0


def test_sending_under_a_message_of_another_chat_is_refused(
    alice_client: Client, fake_model: str
) -> None:
    send(alice_client, "one", fake_model)
    send(alice_client, "two", fake_model)
    first, second = Chat.objects.order_by("created_at")
    wait_for_answer(first.messages.get(role="assistant").id)
    wait_for_answer(second.messages.get(role="assistant").id)
    foreign = second.messages.get(role="assistant")
    response = send(alice_client, "three", fake_model, chat_id=first.id, parent=str(foreign.id))
    assert response.status_code == 404
    assert first.messages.count() == 2


def test_sending_while_the_answer_streams_is_refused(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    script = Script(text=["a ", "b ", "c"], stall_after=1)
    fake_llm.enqueue(script)
    send(alice_client, "one", fake_model)
    chat = Chat.objects.get()
    streaming = chat.messages.get(role="assistant")
    assert script.wait_until_stalled()
    response = send(alice_client, "two", fake_model, chat_id=chat.id, parent=str(streaming.id))
    assert response.status_code == 409
    assert "Wait for the answer to finish" in response.content.decode()
    script.release()
    wait_for_answer(streaming.id)
