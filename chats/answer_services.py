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
from chats.parts import text_parts_html
from chats.tree_services import chats_touch_unlocked
from models_registry.calls import CallTarget, Usage
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


@dataclass(frozen=True)
class StepUsage:
    """What one step (one model call) of an answer used, and how it finished."""

    usage: Usage | None
    finish_reason: str | None = None


@dataclass(frozen=True)
class AnswerEnd:
    """The rendered answer: all its text together (`Message.html`), and each text part."""

    html: str
    parts_html: list[str]


# The end of an answer in one statement (its own transaction): the message's final state,
# one TokenUsage row per step, the chat's activity time and the event. When the message is no
# longer `streaming` (deleted meanwhile, or reaped) nothing is written.
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
    SELECT %(user)s, %(chat)s, answer.id, %(model)s, %(provider)s, step.input, step.output,
           step.reasoning, step.cached, step.cost, now()
    FROM answer
    CROSS JOIN unnest(%(inputs)s::integer[], %(outputs)s::integer[], %(reasonings)s::integer[],
                      %(cacheds)s::integer[], %(costs)s::numeric[])
        AS step(input, output, reasoning, cached, cost)
), chat AS (
    -- Never waits for the chat's row: a tree write holding it (it bumps updated_at itself)
    -- may be waiting for this answer's row, and waiting here deadlocked the two.
    UPDATE chats_chat SET updated_at = now()
    WHERE id IN (SELECT id FROM chats_chat WHERE id = %(chat)s FOR NO KEY UPDATE SKIP LOCKED)
      AND EXISTS (SELECT 1 FROM answer)
)
SELECT {NOTIFY_SQL} FROM answer
"""  # noqa: S608  (NOTIFY_SQL is a constant)


def _usage_json(steps: list[StepUsage], costs: list[Decimal | None]) -> str | None:
    """`Message.usage`: the steps' usage summed, with how many steps and how the last ended;
    None when no step reported any."""
    reported = [step.usage for step in steps if step.usage is not None]
    if not reported:
        return None
    known = [cost for cost in costs if cost is not None]
    return orjson.dumps(
        {
            "input_tokens": sum(usage.input_tokens for usage in reported),
            "output_tokens": sum(usage.output_tokens for usage in reported),
            "reasoning_tokens": sum(usage.reasoning_tokens for usage in reported),
            "cached_input_tokens": sum(usage.cached_input_tokens for usage in reported),
            "cost_usd": str(sum(known, Decimal(0))) if known else None,
            "finish_reason": steps[-1].finish_reason,
            "steps": len(steps),
        }
    ).decode()


def _parts_rendered(parts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], AnswerEnd]:
    """`parts` with each text part's HTML, and the answer's HTML (its text parts together, as
    separate paragraphs: they were separated by tool calls)."""
    texts = [str(part.get("text", "")) for part in parts if part.get("type") == "text"]
    rendered = [
        part | {"html": markdown_render(part["text"]) if part.get("text") else ""}
        if part.get("type") == "text"
        else part
        for part in parts
    ]
    joined = "\n\n".join(text for text in texts if text)
    return rendered, AnswerEnd(
        html=markdown_render(joined) if joined else "", parts_html=text_parts_html(rendered)
    )


def answer_finish(
    *,
    message_id: uuid.UUID,
    chat_id: uuid.UUID,
    user_id: uuid.UUID,
    target: CallTarget,
    parts: list[dict[str, Any]],
    steps: list[StepUsage],
    outcome: AnswerOutcome,
    seq: int,
) -> AnswerEnd:
    """Store an answer's final state in one statement, with one TokenUsage row per step;
    return its rendered HTML."""
    rendered, end = _parts_rendered(parts)
    steps = steps or [StepUsage(usage=None)]  # an answer stopped before its first call
    usages = [step.usage or Usage() for step in steps]
    costs = [target.pricing.cost(step.usage) if step.usage else None for step in steps]
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_SQL,
            {
                "message": message_id,
                "parts": orjson.dumps(rendered).decode(),
                "status": outcome.status,
                "error": outcome.error,
                "usage": _usage_json(steps, costs),
                "html": end.html,
                "seq": seq,
                "user": user_id,
                "chat": chat_id,
                "model": target.model_id,
                "provider": target.provider_slug,
                "inputs": [usage.input_tokens for usage in usages],
                "outputs": [usage.output_tokens for usage in usages],
                "reasonings": [usage.reasoning_tokens for usage in usages],
                "cacheds": [usage.cached_input_tokens for usage in usages],
                "costs": costs,
                "channel": CHANNEL,
                "payload": event_payload(
                    user_id=user_id, kind="message.updated", chat_id=chat_id,
                    message_id=message_id,
                ),
            },
        )  # fmt: skip
    return end


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
