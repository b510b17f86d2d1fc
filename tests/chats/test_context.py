"""The model's input: the route to the answer, each message once, newest kept when trimmed."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from chats.context_selectors import context_build, system_prompt
from chats.models import Chat, Message
from chats.selectors import chat_tree_load
from chats.services import message_send
from chats.version_services import message_edit_user, message_regenerate, message_select
from models_registry.calls import CallTarget, Capabilities

pytestmark = pytest.mark.django_db

MODEL = "fake:fake-model"


def _context(answer: Message, *, context_window: int | None = None) -> list[dict[str, Any]]:
    """The model's input for `answer`, as the send builds it (the owner's preferences first)."""
    target = CallTarget(
        model_id=MODEL,
        engine="openai_compatible",
        provider_slug="fake",
        provider_kind="custom",
        provider_model="fake-model",
        api_base="http://127.0.0.1:9/v1",
        api_key=None,
        capabilities=Capabilities(context_window=context_window),
    )
    return context_build(
        answer_id=answer.id, chat_id=answer.chat_id, target=target, max_tokens=100,
        system=system_prompt(user=answer.chat.user, chat=answer.chat),
    )  # fmt: skip


def _complete(answer: Message, text: str) -> Message:
    Message.objects.filter(id=answer.id).update(
        status="complete", parts=[{"type": "text", "text": text}]
    )
    answer.refresh_from_db()
    return answer


def _expected(answer: Message) -> list[tuple[str, str]]:
    tree = chat_tree_load(chat=Chat.objects.get(id=answer.chat_id))
    route = tree.ancestors(answer.id)[:-1]
    texts = {m.id: (m.role, m.text) for m in Message.objects.filter(id__in=route)}
    return [texts[i] for i in route]


def test_the_context_follows_the_route_across_forked_branches(alice: User) -> None:
    rng = random.Random(7)
    turn = message_send(user_id=alice.id, chat=None, text="q0", model_id=MODEL)
    chat, answer = turn.chat, _complete(turn.answer, "a0")
    answers = [answer]
    for step in range(1, 25):
        choice = rng.random()
        if choice < 0.2:  # regenerate some earlier answer, then continue from it
            old = rng.choice(answers)
            answer = _complete(message_regenerate(chat=chat, message=old), f"r{step}")
        elif choice < 0.35:  # edit the question above some earlier answer
            old = rng.choice(answers)
            assert old.parent_id is not None
            question = Message.objects.get(id=old.parent_id)
            edit = message_edit_user(chat=chat, message=question, text=f"e{step}", model_id=MODEL)
            answer = _complete(edit.answer, f"ea{step}")
        else:
            parent = rng.choice(answers)
            message_select(chat=chat, message=parent)
            sent = message_send(
                user_id=alice.id, chat=chat, text=f"q{step}", model_id=MODEL, parent_id=parent.id
            )
            answer = _complete(sent.answer, f"a{step}")
        answers.append(answer)
        for probe in rng.sample(answers, min(3, len(answers))):
            got = [(m["role"], m["content"]) for m in _context(probe) if m["role"] != "system"]
            assert got == _expected(probe)


def test_only_the_newest_messages_are_sent_when_the_route_is_long(
    alice: User, settings: SettingsWrapper
) -> None:
    turn = message_send(user_id=alice.id, chat=None, text="q0", model_id=MODEL)
    answer = _complete(turn.answer, "a0")
    for step in range(1, 6):
        sent = message_send(
            user_id=alice.id, chat=turn.chat, text=f"q{step}", model_id=MODEL, parent_id=answer.id
        )
        answer = _complete(sent.answer, f"a{step}")
    last = message_send(
        user_id=alice.id, chat=turn.chat, text="last", model_id=MODEL, parent_id=answer.id
    ).answer
    settings.CONTEXT_MAX_MESSAGES = 3

    contents = [m["content"] for m in _context(last) if m["role"] != "system"]

    assert contents == ["q5", "a5", "last"]


def test_the_context_window_trims_the_oldest_messages(alice: User) -> None:
    turn = message_send(user_id=alice.id, chat=None, text="x" * 3000, model_id=MODEL)
    answer = _complete(turn.answer, "y" * 3000)
    last = message_send(
        user_id=alice.id, chat=turn.chat, text="short", model_id=MODEL, parent_id=answer.id
    ).answer

    contents = [m["content"] for m in _context(last, context_window=1100)]

    assert contents[-1] == "short"
    assert "x" * 3000 not in contents
