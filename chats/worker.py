"""Generation: one task per answer on this process's generation loop, independent of requests.

In a server the generation loop is the server's own event loop (adopted on the first ASGI
call), so a delta reaches the streams that follow it without crossing threads. Elsewhere
(commands, the test client) it is a loop on a thread of its own, started on first use.

The task calls the provider through `models_registry.llm`, hands every delta to the answer's
readers (`chats.live`, and through `chats.relay` to readers in other processes), lets the
checkpoint timer save the growing content (`chats.checkpoints`), and ends with one write
(`chats.answer_services.answer_finish`); a chat's first answer is followed by its title. The
loop also runs the periodic reaper (`chats.reaper`) and, with Redis, this process's liveness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from chats import relay
from chats.answer_services import (
    AnswerOutcome,
    answer_finish,
    chat_title_generated_save,
    db_off_loop,
)
from chats.checkpoints import checkpoints_track, checkpoints_untrack
from chats.context_selectors import chat_title_source
from chats.live import LiveAnswer, live_answer_add, live_answer_remove
from chats.models import Message
from chats.reaper import reaper_forever
from chats.services import TITLE_TIMEOUT_SECONDS, title_clean
from models_registry.calls import (
    CallTarget,
    Delta,
    LLMError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from models_registry.llm import StreamAccumulator, stream_collect, stream_completion

logger = logging.getLogger(__name__)

GENERIC_ERROR = "Something went wrong while generating this answer."
TITLE_PROMPT = (
    "Write a title of at most six words for the conversation below. Answer with the title only: "
    "no quotes, no final punctuation."
)


@dataclass(frozen=True)
class GenerationPlan:
    """What the task generating one answer needs: the answer, whose it is, and the call."""

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
        self.submit(reaper_forever())
        self.submit(_liveness_forever())

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, None]) -> None:
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


async def _liveness_forever() -> None:
    """With Redis, keep this process's liveness key (`chats.relay.process_alive`) fresh."""
    if relay.enabled():
        await relay.process_liveness_forever()


def generation_start(plan: GenerationPlan) -> LiveAnswer:
    """Start generating the answer `plan.message_id` (a `streaming` placeholder)."""
    live = LiveAnswer(message_id=plan.message_id, chat_id=plan.chat_id, user_id=plan.user_id)
    live_answer_add(live)
    _worker.submit(_generate(live, plan))
    return live


# -- one answer ---------------------------------------------------------------------------------


async def _generate(live: LiveAnswer, plan: GenerationPlan) -> None:
    """Generate one answer: stream it to its readers, save its end, then maybe its chat's title."""
    live.task = asyncio.current_task()
    acc = StreamAccumulator()
    checkpoints_track(live, acc)
    remote = relay.RemoteRelay(live) if relay.enabled() else None
    if remote is not None:
        await _relay_start(live, remote)
    outcome = await _answer_stream(live, plan, acc)
    html = await _answer_end_save(plan, acc, outcome, live.seq)
    done = {"status": outcome.status, "error": outcome.error, "html": html}
    live.emit("done", done | ({"truncated": True} if outcome.truncated else {}))
    live_answer_remove(plan.message_id)
    if remote is not None:
        await remote.close()
    if plan.title_target is not None and outcome.status == Message.Status.COMPLETE:
        await _title(plan, acc.text)


async def _relay_start(live: LiveAnswer, remote: relay.RemoteRelay) -> None:
    """Start relaying to other processes. A Stop pressed meanwhile cancels this task before
    its answer began: the cancellation is taken back and the stop kept, so the stream below
    ends the answer as stopped (it was left `streaming`, with nobody generating it)."""
    try:
        await remote.start()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not live.stop_requested or task is None:
            raise
        task.uncancel()


async def _answer_stream(
    live: LiveAnswer, plan: GenerationPlan, acc: StreamAccumulator
) -> AnswerOutcome:
    """Stream the provider's answer into `acc` and to the readers; return how it ended.

    A stop (the task cancelled) and a provider's failure end the answer like its last delta:
    what came so far is kept.
    """
    stream: AsyncIterator[Delta] | None = None
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
            _delta_emit(live, delta)
        return AnswerOutcome(
            status=Message.Status.COMPLETE,
            finish_reason=acc.finish_reason,
            truncated=acc.finish_reason == "length",
        )
    except asyncio.CancelledError:
        return AnswerOutcome(status=Message.Status.STOPPED)
    except LLMError as error:
        return AnswerOutcome(status=Message.Status.ERROR, error=error.message)
    except Exception:
        logger.exception("generation of %s failed", plan.message_id)
        return AnswerOutcome(status=Message.Status.ERROR, error=GENERIC_ERROR)
    finally:
        checkpoints_untrack(plan.message_id)
        if stream is not None:
            # The provider connection is going away anyway: a failure to close it is moot.
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]


def _delta_emit(live: LiveAnswer, delta: Delta) -> None:
    """Hand a delta of content to the readers (usage and the finish reason are not content)."""
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


async def _answer_end_save(
    plan: GenerationPlan, acc: StreamAccumulator, outcome: AnswerOutcome, seq: int
) -> str:
    """Save the answer's end, even when its task is being cancelled; return its HTML ("" when
    the save failed: readers then see the end without it)."""
    saving = db_off_loop(answer_finish)(
        message_id=plan.message_id, chat_id=plan.chat_id, user_id=plan.user_id,
        target=plan.target, acc=acc, outcome=outcome, seq=seq,
    )  # fmt: skip
    try:
        return await asyncio.shield(saving)
    except Exception:
        logger.exception("could not save the end of %s", plan.message_id)
        return ""


# -- titles -------------------------------------------------------------------------------------


async def _title(plan: GenerationPlan, answer: str) -> None:
    """Generate the chat's title from its first exchange and store it if it is fit."""
    assert plan.title_target is not None
    try:
        source = await db_off_loop(chat_title_source)(chat_id=plan.chat_id)
        if source is None:
            return
        current, question = source
        result = await asyncio.wait_for(
            stream_collect(
                stream_completion(
                    target=plan.title_target,
                    messages=_title_messages(question, answer),
                    max_tokens=30,
                )
            ),
            timeout=TITLE_TIMEOUT_SECONDS,
        )
        title = title_clean(result.text)  # checked, not trusted: else the fallback stays
        if title is not None:
            await db_off_loop(chat_title_generated_save)(
                chat_id=plan.chat_id, user_id=plan.user_id, fallback=current, title=title
            )
    except Exception as error:  # the fallback title stays; a title is never worth an error
        logger.info("title for chat %s not generated: %s", plan.chat_id, error)


def _title_messages(question: str, answer: str) -> list[dict[str, Any]]:
    prompt = f"User: {question[:2000]}\n\nAssistant: {answer[:2000]}"
    return [{"role": "system", "content": TITLE_PROMPT}, {"role": "user", "content": prompt}]
