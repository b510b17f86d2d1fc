"""An answer's writes: its checkpoints, its end, its chat's generated title, and its interruption.

These are the writes of the generation loop and of the reaper, gathered here so that the
events they publish leave from one place (`realtime.events`, inside each write's transaction).
The loop calls them through `db_off_loop`, which runs them in a worker thread and gives the
connection back at once: a stream holds no database connection between its visits.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.db import connection, transaction

from chats.markdown import markdown_render
from chats.models import Chat, Message
from chats.tree_services import chats_touch_unlocked
from models_registry.calls import CallTarget, Usage
from models_registry.llm import StreamAccumulator
from realtime.events import CHANNEL, NOTIFY_SQL, event_payload, publish
from vero.lib.db import TransactionNow, connection_release

INTERRUPTED_ERROR = "The server stopped before this answer was finished."

# One answer's checkpoint: its id, then its parts as JSON and the sequence number they reach,
# or (None, None) when only its heartbeat is due.
CheckpointRow = tuple[uuid.UUID, str | None, int | None]


def db_off_loop[**P, R](function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run ORM work in a worker thread and give its connection back at once.

    A stream holds no database connection between its checkpoints.
    """

    def run_and_close(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection_release()

    return sync_to_async(run_and_close, thread_sensitive=False)


def answer_parts(acc: StreamAccumulator) -> list[dict[str, Any]]:
    """The parts stored for an answer so far: reasoning, text, then tool calls."""
    parts: list[dict[str, Any]] = []
    if acc.reasoning:
        parts.append({"type": "reasoning", "text": acc.reasoning})
    if acc.text:
        parts.append({"type": "text", "text": acc.text})
    for call in acc.tool_calls:
        parts.append(
            {"type": "tool-call", "id": call.id, "name": call.name, "arguments": call.arguments}
        )
    return parts


# -- checkpoints --------------------------------------------------------------------------------

# Every live answer's checkpoint in one statement: new content where there is some, and the
# heartbeat for all of them. Rows that are no longer `streaming` (finished, reaped, deleted)
# are left alone.
_CHECKPOINTS_SQL = """
UPDATE chats_message AS m
SET parts = COALESCE(v.parts::jsonb, m.parts),
    stream_seq = COALESCE(v.seq, m.stream_seq),
    heartbeat_at = statement_timestamp()
FROM unnest(%(ids)s::uuid[], %(parts)s::text[], %(seqs)s::integer[]) AS v(id, parts, seq)
WHERE m.id = v.id AND m.status = 'streaming'
"""


def answers_checkpoint(*, rows: list[CheckpointRow]) -> None:
    """Save the content so far and the heartbeat of several answers in one statement."""
    ids, parts, seqs = zip(*rows, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            _CHECKPOINTS_SQL, {"ids": list(ids), "parts": list(parts), "seqs": list(seqs)}
        )


# -- the end of an answer -----------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerOutcome:
    """How an answer's generation ended."""

    status: str
    error: str = ""
    finish_reason: str | None = None
    truncated: bool = False  # the model stopped at the token limit


# The end of an answer in one statement (its own transaction): the message's final state,
# its TokenUsage row, the chat's activity time and the event. When the message is no longer
# `streaming` (deleted meanwhile, or reaped) nothing is written.
_FINISH_SQL = f"""
WITH answer AS (
    UPDATE chats_message
    SET parts = %(parts)s::jsonb, status = %(status)s, error = %(error)s,
        usage = %(usage)s::jsonb, html = %(html)s, stream_seq = %(seq)s, heartbeat_at = NULL,
        updated_at = now()
    WHERE id = %(message)s AND status = 'streaming'
    RETURNING id
), spent AS (
    INSERT INTO chats_tokenusage (user_id, chat_id, message_id, model_id, provider,
                                  input_tokens, output_tokens, reasoning_tokens,
                                  cached_input_tokens, cost_usd, created_at)
    SELECT %(user)s, %(chat)s, answer.id, %(model)s, %(provider)s, %(input)s, %(output)s,
           %(reasoning)s, %(cached)s, %(cost)s, now()
    FROM answer
), chat AS (
    -- Never waits for the chat's row: a tree write holding it (it bumps updated_at itself)
    -- may be waiting for this answer's row, and waiting here deadlocked the two.
    UPDATE chats_chat SET updated_at = now()
    WHERE id IN (SELECT id FROM chats_chat WHERE id = %(chat)s FOR NO KEY UPDATE SKIP LOCKED)
      AND EXISTS (SELECT 1 FROM answer)
)
SELECT {NOTIFY_SQL} FROM answer
"""  # noqa: S608  (NOTIFY_SQL is a constant)


def _usage_json(usage: Usage | None, cost: Decimal | None, finish_reason: str | None) -> str | None:
    if usage is None:
        return None
    return orjson.dumps(
        {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "cost_usd": str(cost) if cost is not None else None,
            "finish_reason": finish_reason,
        }
    ).decode()


def answer_finish(
    *,
    message_id: uuid.UUID,
    chat_id: uuid.UUID,
    user_id: uuid.UUID,
    target: CallTarget,
    acc: StreamAccumulator,
    outcome: AnswerOutcome,
    seq: int,
) -> str:
    """Store an answer's final state in one statement; return its rendered HTML."""
    html = markdown_render(acc.text) if acc.text else ""
    usage = acc.usage
    cost = target.pricing.cost(usage) if usage is not None else None
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_SQL,
            {
                "message": message_id,
                "parts": orjson.dumps(answer_parts(acc)).decode(),
                "status": outcome.status,
                "error": outcome.error,
                "usage": _usage_json(usage, cost, outcome.finish_reason),
                "html": html,
                "seq": seq,
                "user": user_id,
                "chat": chat_id,
                "model": target.model_id,
                "provider": target.provider_slug,
                "input": usage.input_tokens if usage else 0,
                "output": usage.output_tokens if usage else 0,
                "reasoning": usage.reasoning_tokens if usage else 0,
                "cached": usage.cached_input_tokens if usage else 0,
                "cost": cost,
                "channel": CHANNEL,
                "payload": event_payload(
                    user_id=user_id, kind="message.updated", chat_id=chat_id,
                    message_id=message_id,
                ),
            },
        )  # fmt: skip
    return html


def chat_title_generated_save(
    *, chat_id: uuid.UUID, user_id: uuid.UUID, fallback: str, title: str
) -> None:
    """Replace the chat's fallback title with a generated one."""
    with transaction.atomic():
        # Only replace the fallback: a title the user typed meanwhile wins.
        if Chat.objects.filter(id=chat_id, title=fallback).update(title=title):
            publish(user_id=user_id, kind="chat.updated", chat_id=chat_id)


# -- answers nobody generates any more ---------------------------------------------------------


def _messages_interrupt(rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]) -> None:
    """Mark (message, chat, user) rows `interrupted`, keeping their saved parts; publish each.

    Call inside the transaction that locked the rows.
    """
    Message.objects.filter(id__in=[row[0] for row in rows]).update(
        status=Message.Status.INTERRUPTED,
        error=INTERRUPTED_ERROR,
        heartbeat_at=None,
        updated_at=TransactionNow(),
    )
    chats_touch_unlocked(chat_ids=sorted({row[1] for row in rows}))
    for message_id, chat_id, user_id in rows:
        publish(user_id=user_id, kind="message.updated", chat_id=chat_id, message_id=message_id)


def messages_interrupt(*, ids: list[uuid.UUID]) -> int:
    """Mark those of `ids` still `streaming` as `interrupted` (under their row locks, so of
    several callers one settles each); return how many."""
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update(of=("self",))
            .filter(id__in=ids, status=Message.Status.STREAMING)
            .values_list("id", "chat_id", "chat__user_id")
        )
        if rows:
            _messages_interrupt(rows)
    return len(rows)


def message_interrupt_orphan(*, message_id: uuid.UUID) -> bool:
    """Mark an answer nobody generates any more (`chats.reaper.answer_orphaned`) as
    `interrupted`.

    Guarded: only a row still `streaming` changes, so of several readers one settles it, and
    an answer that finished meanwhile keeps its end. Returns whether this call settled it.
    """
    return messages_interrupt(ids=[message_id]) == 1


def messages_interrupt_with_content(
    *, checkpoints: list[CheckpointRow], ids: list[uuid.UUID]
) -> int:
    """Save the content so far (`checkpoints`), then mark `ids` `interrupted`; return how many."""
    if checkpoints:
        answers_checkpoint(rows=checkpoints)
    return messages_interrupt(ids=ids)


def messages_interrupt_stale(*, before: datetime, keep: set[uuid.UUID]) -> int:
    """Mark `streaming` answers whose heartbeat is older than `before` as `interrupted`,
    except those in `keep`; return how many."""
    with transaction.atomic():
        stale = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Message.Status.STREAMING, heartbeat_at__lt=before)
            .exclude(id__in=keep)
            .values_list("id", "chat_id", "chat__user_id")
        )
        if stale:
            _messages_interrupt(stale)
    return len(stale)
