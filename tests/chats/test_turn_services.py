"""The flows a user starts, called as a management command or a script would: no request.

Each resolves the model, admits against the rate limit, writes the tree and starts the answer;
refusals are `VeroError`s with the status a view answers (`vero.errors.http_status`).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from accounts.models import User
from chats import relay
from chats.errors import ChatBusy, NotRetryable, SendParentGone, TreeError
from chats.models import Chat, Message
from chats.turn_services import (
    Outgoing,
    RateLimitedError,
    UnknownDeleteScope,
    answer_regenerate,
    answer_retry,
    answer_stop,
    message_delete,
    message_edit,
    turn_send,
    version_show,
)
from models_registry.models import Tier
from models_registry.resolver import ResolutionError
from ratelimit.models import UserRateLimit
from tests.chats.helpers import wait_for_answer
from tests.fake_provider import Script
from vero.errors import http_status

pytestmark = pytest.mark.django_db(transaction=True)


def _send(alice: User, model: str, text: str, chat: Chat | None = None) -> Message:
    sent = turn_send(
        actor=alice, actor_ensure=lambda: alice, chat=chat, outgoing=Outgoing(text, model)
    )
    return wait_for_answer(sent.turn.answer.id)


def test_a_send_without_a_request_writes_the_turn_and_generates_the_answer(
    alice: User, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["Hello ", "there."]))

    sent = turn_send(
        actor=alice, actor_ensure=lambda: alice, chat=None, outgoing=Outgoing("Hi", fake_model)
    )

    assert sent.turn.chat_created and sent.turn.chat.user_id == alice.id
    assert sent.decision.allowed and sent.decision.remaining == sent.decision.capacity - 1
    answer = wait_for_answer(sent.turn.answer.id)
    assert (answer.status, answer.text) == ("complete", "Hello there.")


def test_a_refused_model_creates_nothing_not_even_the_actor(fake_model: str) -> None:
    def actor_ensure() -> User:
        raise AssertionError("the guest's row was created for a refused model")

    with pytest.raises(ResolutionError):
        turn_send(
            actor=None,
            actor_ensure=actor_ensure,
            chat=None,
            outgoing=Outgoing("Hi", "no-such-model"),
        )

    assert Chat.objects.count() == 0


def test_an_empty_bucket_is_a_429_refusal_that_carries_the_decision(
    alice: User, fake_model: str, fake_llm: Any
) -> None:
    alice.tier = Tier.objects.create(
        slug="one", name="One", bucket_capacity=1, refill_amount=1, refill_interval_seconds=600,
        includes_all_models=True,
    )  # fmt: skip
    alice.save()
    _send(alice, fake_model, "first")

    with pytest.raises(RateLimitedError) as refused:
        turn_send(
            actor=alice,
            actor_ensure=lambda: alice,
            chat=None,
            outgoing=Outgoing("again", fake_model),
        )

    assert http_status(refused.value) == 429
    assert not refused.value.decision.allowed and refused.value.decision.retry_after_seconds
    assert Chat.objects.count() == 1
    assert UserRateLimit.objects.get(user=alice).tokens == 0


def test_a_send_under_a_message_of_another_chat_is_a_404_refusal(
    alice: User, fake_model: str
) -> None:
    first = _send(alice, fake_model, "one")
    other = _send(alice, fake_model, "two")

    with pytest.raises(SendParentGone) as refused:
        turn_send(
            actor=alice, actor_ensure=lambda: alice, chat=first.chat,
            outgoing=Outgoing("three", fake_model, parent_id=other.id),
        )  # fmt: skip

    assert http_status(refused.value) == 404


def test_retry_and_regenerate_add_a_version_beside_the_answer(
    alice: User, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["x"], error_after=0))
    failed = _send(alice, fake_model, "question")
    assert failed.status == Message.Status.ERROR

    retried = answer_retry(user=alice, chat=failed.chat, message=failed)
    assert retried.error is None and retried.decision is not None
    assert retried.answer is not None and retried.answer.parent_id == failed.parent_id
    done = wait_for_answer(retried.answer.id)

    with pytest.raises(NotRetryable) as refused:
        answer_retry(user=alice, chat=failed.chat, message=done)
    assert http_status(refused.value) == 409

    again = answer_regenerate(user=alice, chat=failed.chat, message=done)
    assert again.answer is not None
    wait_for_answer(again.answer.id)
    assert Message.objects.filter(parent_id=failed.parent_id).count() == 3


def test_a_refusal_after_admission_comes_back_with_the_spent_decision(
    alice: User, fake_model: str
) -> None:
    answer = _send(alice, fake_model, "question")
    Message.objects.filter(id=answer.id).delete()  # another tab deleted it meanwhile
    answer.status = Message.Status.ERROR

    retried = answer_retry(user=alice, chat=answer.chat, message=answer)

    assert retried.answer is None and isinstance(retried.error, TreeError)
    assert retried.decision is not None and retried.decision.allowed
    assert UserRateLimit.objects.get(user=alice).tokens == retried.decision.remaining


def test_edits_switches_and_deletes_run_without_a_request(alice: User, fake_model: str) -> None:
    answer = _send(alice, fake_model, "question")
    chat = Chat.objects.get(id=answer.chat_id)
    assert answer.parent_id is not None
    question = Message.objects.get(id=answer.parent_id)

    edited = message_edit(user=alice, chat=chat, message=question, text="better", mode="version")
    assert edited.decision is not None and edited.answer is not None
    wait_for_answer(edited.answer.id)
    assert version_show(chat=chat, message=question) is None  # the first message changed
    forked = message_edit(user=alice, chat=chat, message=question, text="elsewhere", mode="fork")
    assert forked.fork is not None and forked.fork.id != chat.id
    assert forked.answer is not None
    wait_for_answer(forked.answer.id)

    with pytest.raises(UnknownDeleteScope):
        message_delete(chat=chat, message=question, scope="everything")
    outcome = message_delete(chat=chat, message=question, scope="version")
    assert (outcome.deleted_count, outcome.chat_deleted) == (2, False)


def test_tree_changes_wait_while_the_chat_generates_and_stop_ends_the_answer(
    alice: User, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["slow "] * 200, delay=0.05))
    sent = turn_send(
        actor=alice, actor_ensure=lambda: alice, chat=None, outgoing=Outgoing("Hi", fake_model)
    )
    chat, answer = sent.turn.chat, sent.turn.answer

    with pytest.raises(ChatBusy) as refused:
        version_show(chat=chat, message=sent.turn.question)
    assert http_status(refused.value) == 409

    answer_stop(message=Message.objects.get(id=answer.id))
    assert wait_for_answer(answer.id).status == Message.Status.STOPPED


def test_a_stop_pressed_while_the_answer_is_setting_out_stops_it(
    alice: User, fake_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay's start (Redis) is the first thing an answer awaits: a Stop then cancels the
    task before its stream began, and the answer must still end `stopped`."""
    starting = threading.Event()
    original = relay.RemoteRelay.start

    async def slow_start(self: relay.RemoteRelay) -> None:
        starting.set()
        await asyncio.sleep(1.0)
        await original(self)

    monkeypatch.setattr(relay.RemoteRelay, "start", slow_start)
    sent = turn_send(
        actor=alice, actor_ensure=lambda: alice, chat=None, outgoing=Outgoing("Hi", fake_model)
    )
    assert relay.enabled() and starting.wait(5)

    answer_stop(message=Message.objects.get(id=sent.turn.answer.id))

    assert wait_for_answer(sent.turn.answer.id).status == Message.Status.STOPPED
