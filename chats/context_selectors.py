"""The model's input, read from the database: the system prompt, the route to an answer, and
what a chat's title is generated from.

Read by the request that starts an answer (so the generation task calls the provider at
once), and by the generation loop for a chat's first title. Earlier answers are replayed with
their tool calls and results (`chats.parts.parts_messages`), as the loop itself sends them.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

from accounts.models import User
from archive.selectors import PinnedMemory, pinned_memory
from chats.models import Chat, Message
from chats.parts import parts_messages
from chats.structure import ROUTE_BRANCHES_CTE
from models_registry.calls import ENGINE_LITELLM, CallTarget, parts_text


def system_prompt(*, user: User, chat: Chat, pinned: PinnedMemory | None = None) -> str | None:
    """The system message: the user's preferences, then the chat's pinned memory; or None.

    `pinned` is the chat's pinned memory when the caller has it already (the send that created
    the chat read it as it pinned the staged entries); otherwise it is read here, in one
    statement (`archive.selectors.pinned_memory`).
    """
    lines = []
    if user.name:
        lines.append(f"The user's name is {user.name}.")
    if user.occupation:
        lines.append(f"The user's occupation: {user.occupation}.")
    if user.custom_instructions:
        lines.append(f"The user's instructions for you:\n{user.custom_instructions}")
    memory = pinned.text if pinned is not None else pinned_memory(chat_id=chat.id)
    preferences = "\n".join(lines)
    return "\n\n".join(section for section in (preferences, memory) if section) or None


# The route to an answer, newest first: the answer's branch up to it, then each ancestor
# branch up to the message the route forked at (ltree over branches). Each branch is read
# backwards on the (branch, seq) index and stops at `limit` rows, so the cost depends on the
# limit and the route's few branches, never on the chat's length.
_ROUTE_SQL = (
    ROUTE_BRANCHES_CTE  # noqa: S608  (constant text: no input goes into it)
    + """
SELECT m.role, m.parts::text
FROM route r
CROSS JOIN LATERAL (
    SELECT m.role, m.parts, m.seq
    FROM chats_message m
    WHERE m.branch_id = r.id AND m.seq <= r.last_seq
    ORDER BY m.seq DESC
    LIMIT %(limit)s
) m
ORDER BY r.depth DESC, m.seq DESC
LIMIT %(limit)s
"""
)

# Characters per token, roughly, to keep the history within the model's context window.
_CHARS_PER_TOKEN = 3
_DEFAULT_CONTEXT_TOKENS = 128_000


def _route_backwards(*, answer_id: uuid.UUID, chat_id: uuid.UUID) -> list[tuple[str, str]]:
    """(role, parts as JSON text) of the messages before `answer_id` on its route, newest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ROUTE_SQL,
            {
                "message": answer_id,
                "chat": chat_id,
                "before": 1,  # the answer itself is not its own context
                "limit": settings.CONTEXT_MAX_MESSAGES,
            },
        )  # fmt: skip
        return cursor.fetchall()


def _message_turn(role: str, parts: list[dict[str, Any]], *, with_state: bool) -> list[Any]:
    """One stored message as the provider reads it: a question's text, or an answer's steps."""
    if role == Message.Role.ASSISTANT:
        return parts_messages(parts, with_state=with_state)
    text = parts_text(parts)
    return [{"role": role, "content": text}] if text else []


def _turn_size(messages: list[dict[str, Any]]) -> int:
    size = 0
    for message in messages:
        size += len(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            size += len(call["function"]["arguments"])
    return size


def context_build(
    *,
    answer_id: uuid.UUID,
    chat_id: uuid.UUID,
    target: CallTarget,
    max_tokens: int,
    system: str | None,
) -> list[dict[str, Any]]:
    """Build the model's input: `system`, then the route to `answer_id`, each message once.

    One bounded query whatever the chat's length. The oldest messages are left out when the
    route exceeds CONTEXT_MAX_MESSAGES or the model's context window (with room kept for the
    answer). An earlier answer that called tools comes back as its steps (its calls and their
    results, docs/tools.md), whole or not at all: a tool message never goes without its call.
    """
    window = target.capabilities.context_window or _DEFAULT_CONTEXT_TOKENS
    budget = max(window - max_tokens, window // 2) * _CHARS_PER_TOKEN - len(system or "")
    with_state = target.engine == ENGINE_LITELLM  # the reasoning state is LiteLLM's to send
    history: list[dict[str, Any]] = []
    for role, parts in _route_backwards(answer_id=answer_id, chat_id=chat_id):  # newest first
        # Parsed from text: orjson decodes 500 rows in a third less than psycopg's jsonb.
        turn = _message_turn(role, orjson.loads(parts), with_state=with_state)
        if not turn:
            continue
        budget -= _turn_size(turn)
        if budget < 0 and history:
            break
        history.extend(reversed(turn))
    history.reverse()
    return ([{"role": "system", "content": system}] if system else []) + history


def chat_title_source(*, chat_id: uuid.UUID) -> tuple[str, str] | None:
    """The chat's current title and its first question, or None when either is gone."""
    chat = Chat.objects.filter(id=chat_id).values_list("title", flat=True).first()
    first = (
        Message.objects.filter(chat_id=chat_id, parent__isnull=True, role=Message.Role.USER)
        .order_by("created_at")
        .first()
    )
    if chat is None or first is None:
        return None
    return chat, first.text
