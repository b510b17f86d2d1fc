"""Generation: one task per answer on this process's generation loop, independent of requests.

In a server the generation loop is the server's own event loop (adopted on the first ASGI
call), so a delta reaches the streams that follow it without crossing threads. Elsewhere
(commands, the test client) it is a loop on a thread of its own, started on first use.

The task runs the answer's bounded tool loop (docs/tools.md, "The loop"): each step calls the
provider through `models_registry.llm` with the chat's tools offered, and the calls a step ends
with run through `tools.registry.tool_execute` before the next step reads their results. Every
event goes to the answer's readers (`chats.live`, and through `chats.relay` to readers in other
processes) and is folded into its parts (`chats.parts`), which the checkpoint timer saves
(`chats.checkpoints`); the answer ends with one write (`chats.answer_services.answer_finish`),
and a chat's first answer is followed by its title. The
loop also runs the periodic reaper (`chats.reaper`) and, with Redis, this process's liveness.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from chats import relay
from chats.answer_services import (
    AnswerEnd,
    AnswerOutcome,
    StepUsage,
    answer_finish,
    chat_title_generated_save,
    db_off_loop,
)
from chats.attachment_encoding import FileGone, files_encoded, has_files
from chats.checkpoints import checkpoints_track, checkpoints_untrack
from chats.context_selectors import chat_title_source
from chats.live import LiveAnswer, live_answer_add, live_answer_remove
from chats.models import Message
from chats.parts import AnswerParts, parts_messages
from chats.reaper import reaper_forever
from chats.services import TITLE_TIMEOUT_SECONDS, title_clean
from models_registry.calls import (
    ENGINE_LITELLM,
    CallTarget,
    FinishDelta,
    LLMError,
    ReasoningDelta,
    ReasoningStateDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageDelta,
)
from models_registry.llm import stream_collect, stream_completion
from tools.registry import Tool, ToolContext, ToolOutcome, tool_execute, tools_offered

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
    # The tool groups the chat allows (`tools.registry.tool_groups_allowed`) and the chat's
    # settings as they were when the answer started: a change made meanwhile applies to the
    # next answer, never halfway through this one.
    tool_groups: frozenset[str] = frozenset()
    chat_settings: Mapping[str, Any] = field(default_factory=dict)


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

STEP_LIMIT_TEXT = "The answer reached its limit of {steps} model calls, so it ends here."
STEP_LIMIT_RESULT = {
    "error": {"type": "step_limit", "message": "Not run: the answer reached its step limit."}
}
STOPPED_RESULT = {"error": {"type": "stopped", "message": "Stopped by the user."}}
FAILED_RESULT = {"error": {"type": "not_run", "message": "Not run: the answer failed."}}


@dataclass
class _Run:
    """One answer as it runs: every event it emits is folded into its parts first, so a
    checkpoint (parts and sequence number, read together on this loop) is always exact."""

    live: LiveAnswer
    plan: GenerationPlan
    parts: AnswerParts = field(default_factory=AnswerParts)
    steps: list[StepUsage] = field(default_factory=list)

    def emit(self, kind: str, data: Any) -> None:
        self.parts.apply(kind, data)
        self.live.emit(kind, data)


async def _generate(live: LiveAnswer, plan: GenerationPlan) -> None:
    """Generate one answer: stream it to its readers, save its end, then maybe its chat's title."""
    live.task = asyncio.current_task()
    run = _Run(live=live, plan=plan)
    checkpoints_track(live, run.parts)
    remote = relay.RemoteRelay(live) if relay.enabled() else None
    if remote is not None:
        await _relay_start(live, remote)
    outcome = await _answer_loop(run)
    end = await _answer_end_save(run, outcome)
    done = {"status": outcome.status, "error": outcome.error, "html": end.html,
            "parts_html": end.parts_html}  # fmt: skip
    live.emit("done", done | ({"truncated": True} if outcome.truncated else {}))
    live_answer_remove(plan.message_id)
    if remote is not None:
        await remote.close()
    if plan.title_target is not None and outcome.status == Message.Status.COMPLETE:
        await _title(plan, run.parts.text())


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


async def _tools_for(plan: GenerationPlan) -> list[Tool]:
    """The tools offered to this answer: none to a model without tool support or in a chat
    that allows no group."""
    if not plan.target.capabilities.supports_tools or not plan.tool_groups:
        return []
    context = ToolContext(user_id=plan.user_id, chat_id=plan.chat_id, message_id=plan.message_id)
    return await tools_offered(context=context, groups=plan.tool_groups)


async def _answer_loop(run: _Run) -> AnswerOutcome:
    """Run the answer's steps (docs/tools.md, "The loop"); return how it ended.

    Each step streams one model call; when it ends with tool calls, they run in order and the
    next step reads their results. The last step is offered no tools; if it still calls some,
    they are answered with an error and a notice ends the answer. A stop (the task cancelled,
    during a stream or a tool) and a provider's failure end the answer where it is: every part
    is kept, and the calls of the step that have no result get one saying why.
    """
    plan = run.plan
    try:
        if run.live.stop_requested:
            raise asyncio.CancelledError
        tools = await _tools_for(plan)
        if has_files(plan.messages):  # read and encoded here, off the request thread
            run.plan = plan = dataclasses.replace(plan, messages=await files_encoded(plan.messages))
        max_steps = max(1, int(settings.TOOL_MAX_STEPS))
        for step in range(1, max_steps + 1):
            if step > 1:
                run.emit("step", {"step": step})
            last = step == max_steps
            finish_reason = await _step_stream(run, tools=[] if last else tools)
            calls = run.parts.step_calls(step)
            if not calls:
                return AnswerOutcome(
                    status=Message.Status.COMPLETE,
                    finish_reason=finish_reason,
                    truncated=finish_reason == "length",
                )
            _call_ids_ensure(run, step, calls)
            if last:
                for call in calls:
                    _call_end(run, step, call, ToolOutcome(STEP_LIMIT_RESULT, is_error=True))
                run.emit("notice", {"kind": "step-limit",
                                    "text": STEP_LIMIT_TEXT.format(steps=max_steps)})  # fmt: skip
                return AnswerOutcome(status=Message.Status.COMPLETE, finish_reason=finish_reason)
            for call in calls:
                await _call_run(run, tools, step, call)
        raise AssertionError("unreachable: the last step returns")  # pragma: no cover
    except asyncio.CancelledError:
        _calls_unanswered_end(run, ToolOutcome(STOPPED_RESULT, is_error=True))
        return AnswerOutcome(status=Message.Status.STOPPED)
    except (LLMError, FileGone) as error:
        _calls_unanswered_end(run, ToolOutcome(FAILED_RESULT, is_error=True))
        return AnswerOutcome(status=Message.Status.ERROR, error=error.message)
    except Exception:
        logger.exception("generation of %s failed", plan.message_id)
        _calls_unanswered_end(run, ToolOutcome(FAILED_RESULT, is_error=True))
        return AnswerOutcome(status=Message.Status.ERROR, error=GENERIC_ERROR)
    finally:
        checkpoints_untrack(plan.message_id)


async def _step_stream(run: _Run, *, tools: list[Tool]) -> str | None:
    """Stream one model call into the answer; return its finish reason.

    The model reads the conversation, then this answer's earlier steps replayed from its
    parts (the same replay a later turn gets from `context_build`).
    """
    plan = run.plan
    since = len(run.parts.parts)
    messages = plan.messages + parts_messages(
        run.parts.parts, with_state=plan.target.engine == ENGINE_LITELLM
    )
    usage: Usage | None = None
    finish_reason: str | None = None
    stream = stream_completion(
        target=plan.target,
        messages=messages,
        tools=[tool.spec() for tool in tools] or None,
        max_tokens=plan.max_tokens,
        reasoning_effort=plan.reasoning_effort,
    )
    try:
        async for delta in stream:
            if isinstance(delta, TextDelta):
                run.emit("text", delta.text)
            elif isinstance(delta, ReasoningDelta):
                run.emit("reasoning", delta.text)
            elif isinstance(delta, ToolCallDelta):
                run.emit(
                    "tool",
                    {"index": delta.index, "id": delta.id, "name": delta.name,
                     "arguments": delta.arguments},
                )  # fmt: skip
            elif isinstance(delta, ReasoningStateDelta):
                if not run.parts.reasoning_state_set(since, delta.state):
                    run.emit("reasoning", "")  # a part to hold it, folded like any other
                    run.parts.reasoning_state_set(since, delta.state)
            elif isinstance(delta, UsageDelta):
                usage = delta.usage
            elif isinstance(delta, FinishDelta):
                finish_reason = delta.reason
    finally:
        run.steps.append(StepUsage(usage=usage, finish_reason=finish_reason))
        # The provider connection is going away anyway: a failure to close it is moot.
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
    return finish_reason


def _call_ids_ensure(run: _Run, step: int, calls: list[dict[str, Any]]) -> None:
    """Give an id to the calls a provider sent without one (results are matched by id)."""
    for call in calls:
        if not call["id"]:
            call_id = f"call_{run.plan.message_id.hex[:12]}_{step}_{call['index']}"
            run.emit("tool", {"index": call["index"], "id": call_id, "name": None,
                              "arguments": ""})  # fmt: skip


async def _call_run(run: _Run, tools: list[Tool], step: int, call: dict[str, Any]) -> None:
    """Run one call and hand its result to the readers (and the next step)."""
    plan = run.plan
    run.emit("tool-call", {"id": call["id"], "status": "running"})
    outcome = await tool_execute(
        tools=tools,
        name=call["name"],
        arguments=call["arguments"],
        context=ToolContext(user_id=plan.user_id, chat_id=plan.chat_id, message_id=plan.message_id),
    )
    _call_end(run, step, call, outcome)


def _call_end(run: _Run, step: int, call: dict[str, Any], outcome: ToolOutcome) -> None:
    result, is_error = _plain_json(outcome)
    run.emit("tool-call", {"id": call["id"], "status": "error" if is_error else "complete"})
    run.emit("tool-result", {"step": step, "id": call["id"], "name": call["name"],
                             "result": result, "is_error": is_error})  # fmt: skip


def _plain_json(outcome: ToolOutcome) -> tuple[Any, bool]:
    """The result as stored and sent to readers: plain JSON (a tool may return dates,
    decimals, integer keys…); a result that is not JSON at all is the tool's error."""
    try:
        text = orjson.dumps(outcome.result, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        logger.warning("a tool of %s returned a result that is not JSON", type(outcome.result))
        return {"error": {"type": "tool_error", "message": "The tool's result is not JSON."}}, True
    return orjson.loads(text), outcome.is_error


def _calls_unanswered_end(run: _Run, outcome: ToolOutcome) -> None:
    """End the current step's calls that have no result (a stop or a failure came first) with
    `outcome`, so none is left `pending`."""
    step = run.parts.step
    answered = {
        p["id"] for p in run.parts.parts if p["type"] == "tool-result" and p["step"] == step
    }
    for call in run.parts.step_calls(step):
        if call["id"] and call["id"] not in answered:
            _call_end(run, step, call, outcome)


async def _answer_end_save(run: _Run, outcome: AnswerOutcome) -> AnswerEnd:
    """Save the answer's end, even when its task is being cancelled; return its HTML (none
    when the save failed: readers then see the end without it)."""
    plan = run.plan
    saving = db_off_loop(answer_finish)(
        message_id=plan.message_id, chat_id=plan.chat_id, user_id=plan.user_id,
        target=plan.target, parts=run.parts.snapshot(), steps=list(run.steps), outcome=outcome,
        seq=run.live.seq,
    )  # fmt: skip
    try:
        return await asyncio.shield(saving)
    except Exception:
        logger.exception("could not save the end of %s", plan.message_id)
        return AnswerEnd(html="", parts_html=[])


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
