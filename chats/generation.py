"""Generation: one task per answer on this process's generation loop, independent of requests.

In a server the generation loop is the server's own event loop (adopted on the first ASGI
call), so a delta reaches the streams that follow it without crossing threads. Elsewhere
(commands, the test client) it is a loop on a thread of its own, started on first use.

The task calls the provider through `models_registry.llm`, keeps every delta of the answer in
memory with a sequence number (so a follower can join at any point without a gap or a
duplicate), saves the growing content at most once per `GENERATION_CHECKPOINT_SECONDS`, and
ends with one transaction: final status, usage, cost, rendered HTML and a `TokenUsage` row.

Followers in this process receive each delta as it arrives (`LiveAnswer.follow`). With Redis,
followers in other processes ask the generating process for what they missed and then get
batches through the channel layer (`chats.relay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from chats.markdown import markdown_render
from chats.models import Chat, Message
from chats.services import TITLE_TIMEOUT_SECONDS, title_clean
from chats.structure import ROUTE_BRANCHES_CTE
from models_registry.calls import (
    CallTarget,
    FinishDelta,
    LLMError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)
from models_registry.llm import StreamAccumulator, stream_collect, stream_completion
from realtime.events import CHANNEL, event_payload, publish
from vero.lib.db import connection_release
from vero.lifecycle import process_id

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0  # at most; a third of STREAM_STALE_SECONDS when that is shorter
GENERIC_ERROR = "Something went wrong while generating this answer."
INTERRUPTED_ERROR = "The server stopped before this answer was finished."


@dataclass(frozen=True, slots=True)
class StreamEvent:
    seq: int
    kind: str  # "text" | "reasoning" | "tool" | "done"
    data: Any


@dataclass(frozen=True)
class GenerationPlan:
    message_id: uuid.UUID
    chat_id: uuid.UUID
    user_id: uuid.UUID
    target: CallTarget
    max_tokens: int
    # The model's input, read by the request that saved the answer (`context_build`), so the
    # task calls the provider at once.
    messages: list[dict[str, Any]]
    reasoning_effort: str | None = None
    title_target: CallTarget | None = None


# A follower is woken at most this often: deltas that arrive meanwhile go out together in one
# write (each still its own event). One timer per loop paces every follower, and the first delta
# after a quiet spell goes out at once.
FLUSH_SECONDS = 0.04


def keepalive_seconds() -> float:
    """The longest a stream may stay silent (`STREAM_KEEPALIVE_SECONDS`)."""
    return float(settings.STREAM_KEEPALIVE_SECONDS)


def keepalive_due_seconds() -> float:
    """After this much silence a stream writes a keep-alive comment: three quarters of the
    limit, so that timers late on a busy machine still keep it."""
    return keepalive_seconds() * 0.75


def _heartbeat_seconds() -> float:
    # A silent answer's heartbeat must stay well inside the stale limit, or a reader would
    # take it for an answer nobody generates.
    return min(HEARTBEAT_SECONDS, float(settings.STREAM_STALE_SECONDS) / 3)


class _Pacer:
    """Wakes the followers on one event loop: those with news at most every `FLUSH_SECONDS`
    (together, on one timer), the silent ones so that none stays silent longer than
    `keepalive_seconds()`.

    The keep-alive timer looks every quarter of `keepalive_seconds()` and wakes the followers
    silent for half of it or more: a follower is then silent for three quarters of it at most.
    (Once per interval, waking those silent for a whole one, left gaps of up to two.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: list[Follower] = []
        self.followers: set[Follower] = set()
        self.last = -FLUSH_SECONDS
        self._tick: asyncio.Handle | None = None
        self._keepalive: asyncio.TimerHandle | None = None

    def add(self, follower: Follower) -> None:
        self.followers.add(follower)
        if self._keepalive is None:
            self._keepalive = self.loop.call_later(keepalive_seconds() / 4, self._keep_alive)

    def discard(self, follower: Follower) -> None:
        self.followers.discard(follower)
        if not self.followers and self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None

    def schedule(self, follower: Follower) -> None:
        """`follower` has news: wake it with the next tick (on this loop)."""
        self.due.append(follower)
        if self._tick is None:
            at = self.last + FLUSH_SECONDS
            if at <= self.loop.time():
                self._tick = self.loop.call_soon(self._flush)
            else:
                self._tick = self.loop.call_at(at, self._flush)

    def _flush(self) -> None:
        self._tick = None
        self.last = self.loop.time()
        due, self.due = self.due, []
        for follower in due:
            follower.wake()

    def _keep_alive(self) -> None:
        self._keepalive = None
        quarter = keepalive_seconds() / 4
        quiet = self.loop.time() - 2 * quarter
        for follower in self.followers:
            if follower.woken_at <= quiet:
                follower.wake()
        if self.followers:
            self._keepalive = self.loop.call_later(quarter, self._keep_alive)


_pacers: dict[asyncio.AbstractEventLoop, _Pacer] = {}
_pacers_lock = threading.Lock()


def _pacer(loop: asyncio.AbstractEventLoop) -> _Pacer:
    with _pacers_lock:
        pacer = _pacers.get(loop)
        if pacer is None or pacer.loop.is_closed():
            for old in [key for key in _pacers if key.is_closed()]:
                del _pacers[old]
            pacer = _pacers[loop] = _Pacer(loop)
        return pacer


class Follower:
    """A reader of a live answer on some event loop: events wait here until it wakes up.

    A follower is woken at most once per batch and takes everything that accumulated
    meanwhile; on the generation loop itself that is a plain call, from another loop one
    thread-safe call per batch.
    """

    __slots__ = ("_waiter", "_woken", "loop", "pacer", "pending", "signalled", "woken_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pacer = _pacer(loop)
        self.pending: list[StreamEvent] = []
        self.signalled = False  # news is scheduled and not taken yet (under the answer's lock)
        self.woken_at = loop.time()
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """Let `wait` return (on this follower's loop)."""
        self._woken = True
        self.woken_at = self.loop.time()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until there is news, or it has been silent for too long (see `_Pacer`)."""
        if not self._woken:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._woken = False


class LiveAnswer:
    """An answer being generated in this process: its events so far and who follows them."""

    def __init__(
        self,
        *,
        message_id: uuid.UUID,
        chat_id: uuid.UUID,
        user_id: uuid.UUID,
    ) -> None:
        self.message_id = message_id
        self.chat_id = chat_id
        self.user_id = user_id  # whose answer: a stream of it needs no database to check
        self.events: list[StreamEvent] = []
        self.task: asyncio.Task[None] | None = None
        self.stop_requested = False
        self._lock = threading.Lock()
        self._followers: list[Follower] = []
        self._listeners: list[Callable[[StreamEvent], None]] = []

    @property
    def seq(self) -> int:
        return len(self.events)

    def emit(self, kind: str, data: Any) -> StreamEvent:
        with self._lock:
            event = StreamEvent(seq=len(self.events) + 1, kind=kind, data=data)
            self.events.append(event)
            here = asyncio.get_running_loop()
            for follower in self._followers:
                follower.pending.append(event)
                if not follower.signalled:
                    follower.signalled = True
                    if follower.loop is here:
                        follower.pacer.schedule(follower)
                    else:
                        follower.loop.call_soon_threadsafe(follower.pacer.schedule, follower)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)
        return event

    def follow(self, *, after: int) -> tuple[list[StreamEvent], Follower]:
        """Return the events after `after` and a follower for the next ones, nothing between."""
        follower = Follower(asyncio.get_running_loop())
        follower.pacer.add(follower)
        with self._lock:
            backlog = self.events[max(after, 0) :]
            self._followers.append(follower)
        return backlog, follower

    def take(self, follower: Follower) -> list[StreamEvent]:
        """Return what arrived for `follower` since it last took (call on its own loop)."""
        with self._lock:
            batch, follower.pending = follower.pending, []
            follower.signalled = False
        return batch

    def unfollow(self, follower: Follower) -> None:
        """Stop following (call on the follower's own loop)."""
        with self._lock:
            self._followers = [entry for entry in self._followers if entry is not follower]
        follower.pacer.discard(follower)

    def events_after(self, after: int) -> list[StreamEvent]:
        with self._lock:
            return self.events[max(after, 0) :]

    def listen(self, listener: Callable[[StreamEvent], None]) -> None:
        with self._lock:
            self._listeners.append(listener)


_live: dict[uuid.UUID, LiveAnswer] = {}
_live_lock = threading.Lock()


def live_answer_get(message_id: uuid.UUID) -> LiveAnswer | None:
    with _live_lock:
        return _live.get(message_id)


# -- the generation loop ------------------------------------------------------------------------


class _Worker:
    """This process's generation loop: the server's, or one on a thread of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    def adopt(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        """Generate on `loop` (a server's running loop) unless a loop was already chosen."""
        with self._lock:
            if self.loop is None:
                self.loop = loop
                self._background()
            return self.loop

    def ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, ready), name="vero-generation", daemon=True
                )
                thread.start()
                ready.wait()
                self.loop = loop
                self._background()
            return self.loop

    def _background(self) -> None:
        self.submit(_reaper_forever())
        self.submit(_liveness_forever())

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def submit(self, coroutine: Any) -> None:
        loop = self.loop or self.ensure()

        def start() -> None:
            task = loop.create_task(coroutine)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        loop.call_soon_threadsafe(start)


_worker = _Worker()


def worker_start(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Start this process's generation (and its periodic reaper) on `loop`, a server's running
    loop, or on a loop of its own when `loop` is None; nothing when it already runs."""
    if loop is not None:
        _worker.adopt(loop)
    else:
        _worker.ensure()


def generation_start(plan: GenerationPlan) -> LiveAnswer:
    """Start generating the answer `plan.message_id` (a `streaming` placeholder)."""
    live = LiveAnswer(message_id=plan.message_id, chat_id=plan.chat_id, user_id=plan.user_id)
    with _live_lock:
        _live[plan.message_id] = live
    _worker.submit(_generate(live, plan))
    return live


def generation_stop(message_id: uuid.UUID) -> bool:
    """Stop an answer generated by this process; False when it is not generating here."""
    live = live_answer_get(message_id)
    if live is None or live.stop_requested:
        return live is not None
    live.stop_requested = True
    loop = _worker.loop
    if loop is not None and live.task is not None:
        loop.call_soon_threadsafe(live.task.cancel)
    return True


# -- one answer ---------------------------------------------------------------------------------


def _db(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ORM work in a worker thread and give its connection back at once.

    A stream holds no database connection between its checkpoints.
    """

    def run_and_close(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            connection_release()

    return sync_to_async(run_and_close, thread_sensitive=False)


def system_prompt(*, user: User) -> str | None:
    """The system message that personalises answers from the user's preferences, or None."""
    lines = []
    if user.name:
        lines.append(f"The user's name is {user.name}.")
    if user.occupation:
        lines.append(f"The user's occupation: {user.occupation}.")
    if user.custom_instructions:
        lines.append(f"The user's instructions for you:\n{user.custom_instructions}")
    return "\n".join(lines) or None


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


def _text_of(parts: list[dict[str, Any]]) -> str:
    return "".join(part.get("text", "") for part in parts if part.get("type") == "text")


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
    answer).
    """
    window = target.capabilities.context_window or _DEFAULT_CONTEXT_TOKENS
    budget = max(window - max_tokens, window // 2) * _CHARS_PER_TOKEN - len(system or "")
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
        rows = cursor.fetchall()
    history: list[dict[str, Any]] = []
    for role, parts in rows:  # newest first
        text = _text_of(orjson.loads(parts))  # as text: orjson decodes 500 rows in a third less
        if not text:
            continue
        budget -= len(text)
        if budget < 0 and history:
            break
        history.append({"role": role, "content": text})
    history.reverse()
    return ([{"role": "system", "content": system}] if system else []) + history


def _parts(acc: StreamAccumulator) -> list[dict[str, Any]]:
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


def _checkpoints_save(rows: list[tuple[uuid.UUID, str | None, int | None]]) -> None:
    ids, parts, seqs = zip(*rows, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            _CHECKPOINTS_SQL, {"ids": list(ids), "parts": list(parts), "seqs": list(seqs)}
        )


@dataclass
class _Checkpoint:
    live: LiveAnswer
    acc: StreamAccumulator
    saved_seq: int = 0
    saved_at: float = field(default_factory=time.monotonic)


class _Checkpoints:
    """Saves the growing content of every answer this process generates, on one timer.

    Each interval, one statement stores the answers that grew (their parts and the sequence
    number those parts reach, read together on the generation loop, so a page rendered from
    them follows the stream from exactly there) and refreshes the heartbeat of answers that
    were silent for HEARTBEAT_SECONDS. However many answers stream, that is one database
    round trip per interval, and no stream holds a connection.
    """

    def __init__(self) -> None:
        self.answers: dict[uuid.UUID, _Checkpoint] = {}
        self.task: asyncio.Task[None] | None = None
        self.saving = False

    def add(self, live: LiveAnswer, acc: StreamAccumulator) -> None:
        self.answers[live.message_id] = _Checkpoint(live=live, acc=acc)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, message_id: uuid.UUID) -> None:
        self.answers.pop(message_id, None)
        # No answer left: the timer goes now rather than at the end of its interval, and the
        # next answer starts a fresh one (with the interval in force then). A save under way
        # finishes, and the timer then ends by itself.
        if not self.answers and self.task is not None and not self.saving:
            self.task.cancel()
            self.task = None

    def _due(self) -> list[tuple[uuid.UUID, str | None, int | None]]:
        now = time.monotonic()
        rows: list[tuple[uuid.UUID, str | None, int | None]] = []
        for message_id, entry in self.answers.items():
            seq = entry.live.seq
            if seq != entry.saved_seq:
                rows.append((message_id, orjson.dumps(_parts(entry.acc)).decode(), seq))
            elif now - entry.saved_at >= _heartbeat_seconds():
                rows.append((message_id, None, None))
            else:
                continue
            entry.saved_seq, entry.saved_at = seq, now
        return rows

    async def _run(self) -> None:
        while self.answers:
            await asyncio.sleep(settings.GENERATION_CHECKPOINT_SECONDS)
            rows = self._due()
            if not rows:
                continue
            self.saving = True
            try:
                await _db(_checkpoints_save)(rows)
            except Exception:  # the next interval saves again; the final save is separate
                logger.exception("checkpoint of %d answer(s) failed", len(rows))
            finally:
                self.saving = False


_checkpoints = _Checkpoints()


@dataclass
class _Outcome:
    status: str
    error: str = ""
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# The end of an answer in one statement (its own transaction): the message's final state,
# its TokenUsage row, the chat's activity time and the event. When the message is no longer
# `streaming` (deleted meanwhile, or reaped) nothing is written.
_FINISH_SQL = """
WITH answer AS (
    UPDATE chats_message
    SET parts = %(parts)s::jsonb, status = %(status)s, error = %(error)s,
        usage = %(usage)s::jsonb, html = %(html)s, stream_seq = %(seq)s, heartbeat_at = NULL,
        updated_at = %(now)s
    WHERE id = %(message)s AND status = 'streaming'
    RETURNING id
), spent AS (
    INSERT INTO chats_tokenusage (user_id, chat_id, message_id, model_id, provider,
                                  input_tokens, output_tokens, reasoning_tokens,
                                  cached_input_tokens, cost_usd, created_at)
    SELECT %(user)s, %(chat)s, answer.id, %(model)s, %(provider)s, %(input)s, %(output)s,
           %(reasoning)s, %(cached)s, %(cost)s, %(now)s
    FROM answer
), chat AS (
    -- Never waits for the chat's row: a tree write holding it (it bumps updated_at itself)
    -- may be waiting for this answer's row, and waiting here deadlocked the two.
    UPDATE chats_chat SET updated_at = %(now)s
    WHERE id IN (SELECT id FROM chats_chat WHERE id = %(chat)s FOR NO KEY UPDATE SKIP LOCKED)
      AND EXISTS (SELECT 1 FROM answer)
)
SELECT pg_notify(%(channel)s, %(payload)s) FROM answer
"""


def _finish(plan: GenerationPlan, acc: StreamAccumulator, outcome: _Outcome, seq: int) -> str:
    """Store the final state in one statement; return the rendered HTML."""
    html = markdown_render(acc.text) if acc.text else ""
    usage = acc.usage
    cost = plan.target.pricing.cost(usage) if usage is not None else None
    usage_json = (
        {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "cost_usd": str(cost) if cost is not None else None,
            "finish_reason": outcome.finish_reason,
        }
        if usage is not None
        else None
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_SQL,
            {
                "message": plan.message_id,
                "parts": orjson.dumps(_parts(acc)).decode(),
                "status": outcome.status,
                "error": outcome.error,
                "usage": orjson.dumps(usage_json).decode() if usage_json is not None else None,
                "html": html,
                "seq": seq,
                "now": now,
                "user": plan.user_id,
                "chat": plan.chat_id,
                "model": plan.target.model_id,
                "provider": plan.target.provider_slug,
                "input": usage.input_tokens if usage else 0,
                "output": usage.output_tokens if usage else 0,
                "reasoning": usage.reasoning_tokens if usage else 0,
                "cached": usage.cached_input_tokens if usage else 0,
                "cost": cost,
                "channel": CHANNEL,
                "payload": event_payload(
                    user_id=plan.user_id, kind="message.updated", chat_id=plan.chat_id,
                    message_id=plan.message_id,
                ),
            },
        )  # fmt: skip
    return html


async def _generate(live: LiveAnswer, plan: GenerationPlan) -> None:
    from chats import relay

    live.task = asyncio.current_task()
    acc = StreamAccumulator()
    outcome = _Outcome(status=Message.Status.COMPLETE)
    _checkpoints.add(live, acc)
    remote = relay.RemoteRelay(live) if relay.enabled() else None
    if remote is not None:
        await remote.start()
    stream = None
    try:
        if live.stop_requested:
            raise asyncio.CancelledError
        stream = stream_completion(
            target=plan.target,
            messages=plan.messages,
            max_tokens=plan.max_tokens,
            reasoning_effort=plan.reasoning_effort,
        )
        async for delta in stream:
            acc.add(delta)
            if isinstance(delta, TextDelta):
                live.emit("text", delta.text)
            elif isinstance(delta, ReasoningDelta):
                live.emit("reasoning", delta.text)
            elif isinstance(delta, ToolCallDelta):
                live.emit(
                    "tool",
                    {"index": delta.index, "id": delta.id, "name": delta.name,
                     "arguments": delta.arguments},
                )  # fmt: skip
            elif isinstance(delta, FinishDelta):
                outcome.finish_reason = delta.reason
            elif isinstance(delta, UsageDelta):
                pass
        if outcome.finish_reason == "length":
            outcome.extra["truncated"] = True
    except asyncio.CancelledError:
        outcome = _Outcome(status=Message.Status.STOPPED)
    except LLMError as error:
        outcome = _Outcome(status=Message.Status.ERROR, error=error.message)
    except Exception:
        logger.exception("generation of %s failed", plan.message_id)
        outcome = _Outcome(status=Message.Status.ERROR, error=GENERIC_ERROR)
    finally:
        _checkpoints.remove(plan.message_id)
        if stream is not None:
            # The provider connection is going away anyway: a failure to close it is moot.
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
    try:
        html = await asyncio.shield(_db(_finish)(plan, acc, outcome, live.seq))
    except Exception:
        logger.exception("could not save the end of %s", plan.message_id)
        html = ""
    live.emit(
        "done",
        {"status": outcome.status, "error": outcome.error, "html": html, **outcome.extra},
    )
    with _live_lock:
        _live.pop(plan.message_id, None)
    if remote is not None:
        await remote.close()
    if plan.title_target is not None and outcome.status == Message.Status.COMPLETE:
        await _title(plan, acc.text)


# -- titles -------------------------------------------------------------------------------------

TITLE_PROMPT = (
    "Write a title of at most six words for the conversation below. Answer with the title only: "
    "no quotes, no final punctuation."
)


def _title_source(chat_id: uuid.UUID) -> tuple[str, str] | None:
    chat = Chat.objects.filter(id=chat_id).values_list("title", flat=True).first()
    first = (
        Message.objects.filter(chat_id=chat_id, parent__isnull=True, role=Message.Role.USER)
        .order_by("created_at")
        .first()
    )
    if chat is None or first is None:
        return None
    return chat, first.text


def _title_save(chat_id: uuid.UUID, user_id: uuid.UUID, expected: str, title: str) -> None:
    with transaction.atomic():
        # Only replace the fallback: a title the user typed meanwhile wins.
        if Chat.objects.filter(id=chat_id, title=expected).update(title=title):
            publish(user_id=user_id, kind="chat.updated", chat_id=chat_id)


async def _title(plan: GenerationPlan, answer: str) -> None:
    assert plan.title_target is not None
    try:
        source = await _db(_title_source)(plan.chat_id)
        if source is None:
            return
        current, question = source
        prompt = f"User: {question[:2000]}\n\nAssistant: {answer[:2000]}"
        result = await asyncio.wait_for(
            stream_collect(
                stream_completion(
                    target=plan.title_target,
                    messages=[
                        {"role": "system", "content": TITLE_PROMPT},
                        {"role": "user", "content": prompt},
                    ],
                    max_tokens=30,
                )
            ),
            timeout=TITLE_TIMEOUT_SECONDS,
        )
        title = title_clean(result.text)  # checked, not trusted: else the fallback stays
        if title is not None:
            await _db(_title_save)(plan.chat_id, plan.user_id, current, title)
    except Exception as error:  # the fallback title stays; a title is never worth an error
        logger.info("title for chat %s not generated: %s", plan.chat_id, error)


# -- answers nobody generates any more ---------------------------------------------------------


def _stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.STREAM_STALE_SECONDS)


async def answer_orphaned(*, message: Message) -> bool:
    """Whether `message` is `streaming` with nobody generating it any more.

    True when its heartbeat is older than `STREAM_STALE_SECONDS`, or when the process that
    generates it (`Message.generator`) is gone: without Redis there is one process, so any
    other id is a process that ran before this one; with Redis, a process is alive while its
    liveness key is (`chats.relay.process_alive`). An answer generated here, or by an unknown
    process (older rows), is judged by its heartbeat alone, and so is any answer while Redis
    cannot be asked.
    """
    from chats import relay

    if message.status != Message.Status.STREAMING or live_answer_get(message.id) is not None:
        return False
    if message.heartbeat_at is not None and message.heartbeat_at < _stale_before():
        return True
    if message.generator is None or message.generator == process_id():
        return False
    if not relay.enabled():
        return True
    return await relay.process_alive(message.generator) is False


def _messages_interrupt(rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]) -> None:
    """Mark (message, chat, user) rows `interrupted`, keeping their saved parts; publish each.

    Call inside the transaction that locked the rows.
    """
    Message.objects.filter(id__in=[row[0] for row in rows]).update(
        status=Message.Status.INTERRUPTED,
        error=INTERRUPTED_ERROR,
        heartbeat_at=None,
        updated_at=timezone.now(),
    )
    for message_id, chat_id, user_id in rows:
        publish(user_id=user_id, kind="message.updated", chat_id=chat_id, message_id=message_id)


def _streaming_interrupt(ids: list[uuid.UUID]) -> int:
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
    """Mark an answer nobody generates any more (`answer_orphaned`) as `interrupted`.

    Guarded: only a row still `streaming` changes, so of several readers one settles it, and
    an answer that finished meanwhile keeps its end. Returns whether this call settled it.
    """
    return _streaming_interrupt([message_id]) == 1


def _live_answers_interrupt(
    rows: list[tuple[uuid.UUID, str | None, int | None]], ids: list[uuid.UUID]
) -> int:
    if rows:
        _checkpoints_save(rows)
    return _streaming_interrupt(ids)


async def live_answers_interrupt() -> int:
    """Mark every answer this process generates `interrupted`, with its content so far: the
    process is stopping and they end with it. Returns how many."""
    rows = [
        (message_id, orjson.dumps(_parts(entry.acc)).decode(), entry.live.seq)
        for message_id, entry in _checkpoints.answers.items()
    ]
    with _live_lock:
        ids = list(_live)
    if not ids:
        return 0
    return int(await _db(_live_answers_interrupt)(rows, ids))


def _streaming_elsewhere(*, quiet_since: datetime | None) -> list[Message]:
    with _live_lock:
        here = list(_live)
    answers = (
        Message.objects.filter(status=Message.Status.STREAMING, generator__isnull=False)
        .exclude(generator=process_id())
        .exclude(id__in=here)
    )
    if quiet_since is not None:
        answers = answers.filter(heartbeat_at__lt=quiet_since)
    return list(answers.only("id", "status", "heartbeat_at", "generator"))


async def messages_reap_orphans(*, quiet_since: datetime | None = None) -> int:
    """Mark `streaming` answers whose process is gone (`answer_orphaned`) as `interrupted`
    without waiting for their heartbeat to go stale, even when nobody reads them (their chat
    refuses sends meanwhile). Returns how many.

    With `quiet_since`, only answers whose heartbeat is older are looked at."""
    reaped = 0
    for message in await _db(_streaming_elsewhere)(quiet_since=quiet_since):
        if await answer_orphaned(message=message):
            reaped += bool(await _db(message_interrupt_orphan)(message_id=message.id))
    return reaped


# -- the reaper ---------------------------------------------------------------------------------


def messages_reap(*, stale_after: timedelta | None = None) -> int:
    """Mark `streaming` answers whose heartbeat is stale as `interrupted`; return how many."""
    cutoff = timezone.now() - stale_after if stale_after is not None else _stale_before()
    live_here = set(_live)
    with transaction.atomic():
        stale = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Message.Status.STREAMING, heartbeat_at__lt=cutoff)
            .exclude(id__in=live_here)
            .values_list("id", "chat_id", "chat__user_id")
        )
        if stale:
            _messages_interrupt(stale)
    return len(stale)


def _missed_heartbeats_since() -> datetime:
    """Before this, an answer has missed two heartbeats: whoever generates it is not writing."""
    return timezone.now() - timedelta(seconds=2 * _heartbeat_seconds())


async def messages_reap_periodic() -> int:
    """One round of the reaper: stale answers, and answers of gone processes.

    Another process's answer is settled only once it has also missed its heartbeats: a
    process that cannot see the generator's liveness (a test's or a bench's own process,
    configured without the server's Redis) must not end answers that are plainly being
    written."""
    return await _db(messages_reap)() + await messages_reap_orphans(
        quiet_since=_missed_heartbeats_since()
    )


async def _reaper_forever() -> None:
    while True:
        try:
            reaped = await messages_reap_periodic()
            if reaped:
                logger.info("reaper: %d interrupted answer(s)", reaped)
        except Exception:
            logger.exception("reaper failed")
        await asyncio.sleep(settings.STREAM_REAPER_INTERVAL_SECONDS)


async def _liveness_forever() -> None:
    """With Redis, keep this process's liveness key (`chats.relay.process_alive`) fresh."""
    from chats import relay

    if relay.enabled():
        await relay.process_liveness_forever()
