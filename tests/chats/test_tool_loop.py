"""The tool loop: an answer calls tools, reads their results and answers, within its bounds.

Through the real path (a send over HTTP, the answer generated on the generation loop, the fake
provider over real HTTP, the database), on both engines. The tools are a test source of our own,
registered through the registry like any other, with only it registered.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from accounts.models import User
from chats.live import live_answer_get
from chats.models import Chat, Message, TokenUsage
from chats.parts import parts_fold, parts_without_state
from chats.worker import TITLE_PROMPT
from models_registry.cache import registry_cache_clear
from models_registry.calls import ENGINE_LITELLM, ENGINE_OPENAI_COMPATIBLE, KIND_ENGINE, Engine
from models_registry.models import Model, Provider
from models_registry.services import provider_key_set
from ratelimit.selectors import ratelimit_status
from tests.chats.helpers import send, sse_events, wait_for_answer
from tests.fake_provider import FakeProvider, RecordedRequest, Script, ToolCall
from tools import registry
from tools.registry import StaticSource, Tool, ToolContext, ToolError

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = {"role": "system", "content": "The user's name is Alice."}
ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
    "additionalProperties": False,
}


class SlowTool:
    """An async tool that runs until it is cancelled (or `seconds` pass); says when it started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def run(self, context: ToolContext, arguments: dict[str, Any]) -> Any:
        self.started.set()
        try:
            await asyncio.sleep(float(arguments.get("seconds", 30)))
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return {"slept": True}


def _add(context: ToolContext, arguments: dict[str, Any]) -> Any:
    if arguments["a"] < 0:
        raise ToolError("Only natural numbers.", type_="refused")
    return arguments["a"] + arguments["b"]


@pytest.fixture
def slow_tool() -> SlowTool:
    return SlowTool()


@pytest.fixture
def test_tools(monkeypatch: pytest.MonkeyPatch, slow_tool: SlowTool) -> Iterator[list[Tool]]:
    """Only our source is registered: `add` (weather group, sync) and `wait` (code, async)."""
    tools = [
        Tool(name="add", description="Add two integers.", parameters=ADD_SCHEMA,
             group="weather", function=_add),
        Tool(name="wait", description="Wait a while.",
             parameters={"type": "object", "properties": {"seconds": {"type": "number"}}},
             group="code", function=slow_tool.run),
    ]  # fmt: skip
    monkeypatch.setattr(registry, "_sources", {})
    registry.tool_source_register(StaticSource(name="test", static_tools=tuple(tools)))
    yield tools
    registry.tool_source_unregister("test")


@pytest.fixture
def tool_model(fake_model: str, test_tools: list[Tool]) -> str:
    """The fake model, recorded as supporting tools, with a key (LiteLLM insists on one)."""
    provider_key_set(provider=Provider.objects.get(slug="fake-provider"), api_key="sk-test")
    Model.objects.filter(id=fake_model).update(supports_tools=True)
    registry_cache_clear()
    return fake_model


@pytest.fixture(params=[ENGINE_OPENAI_COMPATIBLE, ENGINE_LITELLM])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Serve the fake provider with each engine in turn (LiteLLM speaks OpenAI's API too)."""
    monkeypatch.setitem(KIND_ENGINE, "custom", request.param)
    return request.param


def _answer_requests(fake: FakeProvider) -> list[RecordedRequest]:
    """The answer's model calls (not the title's)."""
    return [
        request
        for request in fake.chat_requests
        if not (request.messages and request.messages[0].get("content") == TITLE_PROMPT)
    ]


def _start(client: Client, model: str, text: str, chat: Chat | None = None) -> Message:
    send(client, text, model, chat_id=chat.id if chat else None)
    chat = chat or Chat.objects.get()
    return chat.messages.filter(role="assistant").order_by("-created_at").first()  # type: ignore[return-value]


def _finished(answer_id: uuid.UUID) -> Message:
    """The answer once it ended (the first LiteLLM call imports LiteLLM: seconds on a busy
    machine)."""
    return wait_for_answer(answer_id, timeout=60)


def _call(
    call_id: str, name: str, arguments: str, status: str, step: int = 1, index: int = 0
) -> dict[str, Any]:
    return {"type": "tool-call", "step": step, "index": index, "id": call_id, "name": name,
            "arguments": arguments, "status": status}  # fmt: skip


def _result(
    call_id: str, name: str, result: Any, is_error: bool = False, step: int = 1
) -> dict[str, Any]:
    return {"type": "tool-result", "step": step, "id": call_id, "name": name, "result": result,
            "is_error": is_error}  # fmt: skip


def _assistant_calls(text: str | None, *calls: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in calls
        ],
    }


ADD_CALL = ToolCall(name="add", arguments={"a": 2, "b": 3}, id="call_add")
ADD_ARGUMENTS = '{"a":2,"b":3}'


# -- the loop -----------------------------------------------------------------------------------


def test_an_answer_calls_a_tool_reads_its_result_and_answers(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider, engine: Engine
) -> None:
    fake_llm.enqueue(
        Script(text="Let me add.", tool_calls=[ADD_CALL]),
        Script(text=["The sum ", "is 5."]),
    )

    answer = _finished(_start(alice_client, tool_model, "What is 2 + 3?").id)

    first, second = _answer_requests(fake_llm)
    question = {"role": "user", "content": "What is 2 + 3?"}
    assert first.messages == [SYSTEM, question]
    assert [tool["function"]["name"] for tool in first.json["tools"]] == ["add", "wait"]
    assert second.messages == [
        SYSTEM,
        question,
        _assistant_calls("Let me add.", ("call_add", "add", ADD_ARGUMENTS)),
        {"role": "tool", "tool_call_id": "call_add", "content": "5"},
    ]
    assert answer.status == "complete"
    assert parts_without_state(answer.parts) == [
        {"type": "text", "text": "Let me add."},
        _call("call_add", "add", ADD_ARGUMENTS, "complete"),
        _result("call_add", "add", 5),
        {"type": "text", "text": "The sum is 5."},
    ]
    assert [part["html"].strip() for part in answer.parts if part["type"] == "text"] == [
        "<p>Let me add.</p>", "<p>The sum is 5.</p>"
    ]  # fmt: skip
    assert "Let me add." in answer.html and "The sum is 5." in answer.html


def test_a_later_turn_replays_the_earlier_calls_and_results(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider, engine: Engine
) -> None:
    fake_llm.enqueue(
        Script(tool_calls=[ADD_CALL]),
        Script(text="It is 5."),
        Script(text="You are welcome."),
    )
    first = _finished(_start(alice_client, tool_model, "What is 2 + 3?").id)
    fake_llm.wait_for_requests(3, timeout=10)  # the title's call too

    later = _start(alice_client, tool_model, "Thanks!", chat=Chat.objects.get())
    _finished(later.id)

    assert first.status == "complete"
    replayed = _answer_requests(fake_llm)[-1]
    calls = _assistant_calls(None, ("call_add", "add", ADD_ARGUMENTS))
    if engine == ENGINE_LITELLM:
        del calls["content"]  # LiteLLM leaves out an empty content; the lean engine sends null
    assert replayed.messages == [
        SYSTEM,
        {"role": "user", "content": "What is 2 + 3?"},
        calls,
        {"role": "tool", "tool_call_id": "call_add", "content": "5"},
        {"role": "assistant", "content": "It is 5."},
        {"role": "user", "content": "Thanks!"},
    ]


def test_reasoning_state_goes_back_to_the_provider_on_litellm_only(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider, engine: Engine
) -> None:
    blocks = [{"type": "thinking", "thinking": "Two and three.", "signature": "sig-Zm9v"}]
    fake_llm.enqueue(
        Script(reasoning="Two and three.", thinking_blocks=blocks, tool_calls=[ADD_CALL]),
        Script(text="5."),
    )

    answer = _finished(_start(alice_client, tool_model, "2 + 3?").id)

    _first, second = _answer_requests(fake_llm)
    assistant = second.messages[2]
    reasoning = answer.parts[0]
    assert reasoning["text"] == "Two and three."
    if engine == ENGINE_LITELLM:
        assert reasoning["state"] == {"thinking_blocks": blocks}
        assert assistant["thinking_blocks"] == blocks
    else:
        assert "state" not in reasoning  # the lean engine reads no such state
        assert "thinking_blocks" not in assistant
    assert "reasoning_content" not in assistant


def test_the_last_step_offers_no_tools_and_a_notice_ends_an_answer_that_still_calls(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider, settings: Any
) -> None:
    settings.TOOL_MAX_STEPS = 2
    fake_llm.enqueue(
        Script(tool_calls=[ADD_CALL]),
        Script(tool_calls=[ToolCall(name="add", arguments={"a": 5, "b": 1}, id="call_again")]),
    )

    answer = _finished(_start(alice_client, tool_model, "Keep adding").id)

    first, last = _answer_requests(fake_llm)
    assert "tools" in first.json
    assert "tools" not in last.json and "tool_choice" not in last.json
    assert answer.status == "complete"
    assert parts_without_state(answer.parts)[-3:] == [
        _call("call_again", "add", '{"a":5,"b":1}', "error", step=2),
        _result("call_again", "add", {"error": {"type": "step_limit",
                "message": "Not run: the answer reached its step limit."}}, True, step=2),
        {"type": "notice", "kind": "step-limit",
         "text": "The answer reached its limit of 2 model calls, so it ends here."},
    ]  # fmt: skip
    assert (answer.usage or {})["steps"] == 2


def test_bad_calls_become_error_results_the_model_reads_and_the_answer_completes(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(
        Script(
            tool_calls=[
                ToolCall(name="nope", arguments="{}", id="c1"),
                ToolCall(name="add", arguments='{"a": 2,', id="c2"),
                ToolCall(name="add", arguments={"a": "two", "b": 3}, id="c3"),
                ToolCall(name="add", arguments={"a": -1, "b": 3}, id="c4"),
            ]
        ),
        Script(text="Sorry, I could not add."),
    )

    answer = _finished(_start(alice_client, tool_model, "Add badly").id)

    results = [part for part in answer.parts if part["type"] == "tool-result"]
    assert [result["result"]["error"]["type"] for result in results] == [
        "unknown_tool", "invalid_arguments", "invalid_arguments", "refused"
    ]  # fmt: skip
    assert all(result["is_error"] for result in results)
    assert [p["status"] for p in answer.parts if p["type"] == "tool-call"] == ["error"] * 4
    tool_messages = [m for m in _answer_requests(fake_llm)[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["c1", "c2", "c3", "c4"]
    assert "There is no tool named 'nope'" in tool_messages[0]["content"]
    assert "not valid JSON" in tool_messages[1]["content"]
    assert "a: 'two' is not of type 'integer'" in tool_messages[2]["content"]
    # A call whose arguments are not JSON goes back with empty ones (providers parse them).
    calls = _answer_requests(fake_llm)[1].messages[2]["tool_calls"]
    assert calls[1]["function"]["arguments"] == "{}"
    assert answer.status == "complete" and answer.error == ""
    page = alice_client.get(f"/c/{answer.chat_id}/").content.decode()
    assert "Traceback" not in page
    assert "Sorry, I could not add." in page


# -- what is offered ----------------------------------------------------------------------------


def test_a_model_without_tool_support_is_offered_no_tools(
    alice_client: Client, fake_model: str, test_tools: list[Tool], fake_llm: FakeProvider
) -> None:
    _finished(_start(alice_client, fake_model, "Hello").id)

    assert "tools" not in _answer_requests(fake_llm)[0].json


def test_only_the_groups_the_chat_allows_are_offered(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    _finished(_start(alice_client, tool_model, "Hello").id)
    chat = Chat.objects.get()

    offered = []
    for groups in (["code"], []):
        Chat.objects.filter(id=chat.id).update(settings=chat.settings | {"tools": groups})
        _finished(_start(alice_client, tool_model, "Again", chat=chat).id)
        body = _answer_requests(fake_llm)[-1].json
        offered.append([tool["function"]["name"] for tool in body.get("tools", [])])

    assert offered == [["wait"], []]


# -- usage and admission ------------------------------------------------------------------------


def test_each_step_records_its_usage_the_answer_sums_them_and_the_bucket_is_spent_once(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    before = ratelimit_status(user=alice).remaining
    fake_llm.enqueue(
        Script(tool_calls=[ADD_CALL], prompt_tokens=10, completion_tokens=4),
        Script(tool_calls=[ADD_CALL], prompt_tokens=20, completion_tokens=5),
        Script(text="5", prompt_tokens=30, completion_tokens=1, reasoning_tokens=0),
    )

    answer = _finished(_start(alice_client, tool_model, "Add twice").id)

    rows = TokenUsage.objects.filter(message_id=answer.id).order_by("input_tokens")
    assert [(row.input_tokens, row.output_tokens) for row in rows] == [(10, 4), (20, 5), (30, 1)]
    # $1 and $2 per million tokens in and out.
    assert [str(row.cost_usd) for row in rows] == ["0.00001800", "0.00003000", "0.00003200"]
    usage = answer.usage or {}
    assert usage["input_tokens"] == 60
    assert usage["output_tokens"] == 10
    assert usage["steps"] == 3
    assert usage["finish_reason"] == "stop"
    assert Decimal(usage["cost_usd"]) == Decimal("0.00008")
    assert ratelimit_status(user=alice).remaining == before - 1


# -- stop ---------------------------------------------------------------------------------------


def test_stop_during_a_tool_cancels_it_and_keeps_every_part(
    alice_client: Client, tool_model: str, fake_llm: FakeProvider, slow_tool: SlowTool
) -> None:
    fake_llm.enqueue(
        Script(text="Waiting.", tool_calls=[ToolCall(name="wait", arguments={}, id="call_wait")])
    )
    answer = _start(alice_client, tool_model, "Wait for me")
    assert slow_tool.started.wait(10)

    response = alice_client.post(f"/c/{answer.chat_id}/m/{answer.id}/stop")

    assert response.status_code == 204
    saved = wait_for_answer(answer.id)
    assert slow_tool.cancelled.wait(5)
    assert saved.status == "stopped"
    assert parts_without_state(saved.parts) == [
        {"type": "text", "text": "Waiting."},
        _call("call_wait", "wait", "{}", "error"),
        _result("call_wait", "wait", {"error": {"type": "stopped",
                "message": "Stopped by the user."}}, True),
    ]  # fmt: skip
    assert len(_answer_requests(fake_llm)) == 1  # no step after a stop


def test_stop_during_the_second_steps_stream_keeps_the_first_step_and_the_partial_text(
    alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    streaming = Script(text=["The ", "sum ", "is ", "5."], stall_after=2)
    fake_llm.enqueue(Script(tool_calls=[ADD_CALL]), streaming)
    answer = _start(alice_client, tool_model, "Add")
    assert streaming.wait_until_stalled(10)
    _live_seq_reaches(answer.id, 7)  # tool x4, running, complete, result... then step, 2 texts

    alice_client.post(f"/c/{answer.chat_id}/m/{answer.id}/stop")

    saved = wait_for_answer(answer.id)
    assert saved.status == "stopped"
    assert parts_without_state(saved.parts) == [
        _call("call_add", "add", ADD_ARGUMENTS, "complete"),
        _result("call_add", "add", 5),
        {"type": "text", "text": "The sum "},
    ]
    assert saved.usage is not None and saved.usage["steps"] == 2
    assert TokenUsage.objects.filter(message_id=answer.id).count() == 2


def _live_seq_reaches(message_id: uuid.UUID, seq: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        live = live_answer_get(message_id)
        if live is not None and live.seq >= seq:
            return
        assert time.monotonic() < deadline, "the answer did not get that far"
        time.sleep(0.01)


# -- the saved parts and the events -------------------------------------------------------------


def test_every_checkpoint_is_exactly_the_fold_of_the_events_it_reaches(
    alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    from chats.checkpoints import checkpoints_now
    from chats.worker import _worker

    fake_llm.enqueue(
        Script(reasoning=["Adding ", "up."], text=["Let ", "me ", "add."], delay=0.01,
               tool_calls=[ADD_CALL, ToolCall(name="nope", id="call_nope")]),
        Script(text=[f"w{i} " for i in range(15)], delay=0.01),
    )  # fmt: skip
    answer = _start(alice_client, tool_model, "Add")
    assert _worker.loop is not None

    async def sample() -> list[tuple[str, int, list[tuple[str, Any]]]]:
        live = live_answer_get(answer.id)
        rows = checkpoints_now() if live is not None else []
        # Read on the loop, together with the checkpoint: nothing is emitted in between.
        events = [(event.kind, event.data) for event in live.events] if live else []
        return [(parts or "[]", seq or 0, events[: seq or 0]) for _, parts, seq in rows]

    samples = []
    deadline = time.monotonic() + 15
    while Message.objects.get(id=answer.id).status == "streaming":
        assert time.monotonic() < deadline
        samples += asyncio.run_coroutine_threadsafe(sample(), _worker.loop).result(5)
        time.sleep(0.005)

    assert len({seq for _, seq, _ in samples}) > 10  # sampled all along the answer
    for parts, _seq, events in samples:
        assert parts_without_state(orjson.loads(parts)) == parts_fold(events)
    final = Message.objects.get(id=answer.id)
    kinds = {kind for _, _, events in samples for kind, _ in events}
    assert {"reasoning", "text", "tool", "tool-call", "tool-result", "step"} <= kinds
    assert final.stream_seq == max(seq for _, seq, _ in samples) + 1 or final.stream_seq > 0


@pytest.mark.asyncio
async def test_a_page_reloaded_mid_loop_folds_its_saved_parts_and_the_rest_of_the_stream_to_the_end(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider, settings: Any
) -> None:
    settings.GENERATION_CHECKPOINT_SECONDS = 0.05
    streaming = Script(text=["The ", "sum ", "is ", "5."], stall_after=2)
    fake_llm.enqueue(Script(text="Adding.", tool_calls=[ADD_CALL]), streaming)
    answer = await sync_to_async(_start)(alice_client, tool_model, "Add")
    assert await streaming.wait_until_stalled_async(10)
    saved = await _checkpointed_beyond(answer.id, 8)  # what a page reloaded now renders

    reader = AsyncClient()
    await reader.aforce_login(alice)
    response = await reader.get(
        f"/c/{answer.chat_id}/m/{answer.id}/stream",
        headers={"Last-Event-ID": str(saved.stream_seq)},
    )
    streaming.release()
    body = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]

    events = sse_events(body)
    final = await Message.objects.aget(id=answer.id)
    assert events[0][0] == saved.stream_seq + 1  # exactly the rest, nothing twice
    rest = [(kind, data) for _, kind, data in events if kind != "done"]
    assert parts_fold(rest, parts=saved.parts) == parts_without_state(final.parts)
    assert final.status == "complete"
    done = events[-1][2]
    assert [html.strip() for html in done["parts_html"]] == [
        "<p>Adding.</p>",
        "<p>The sum is 5.</p>",
    ]


async def _checkpointed_beyond(message_id: uuid.UUID, seq: int, timeout: float = 10.0) -> Message:
    deadline = time.monotonic() + timeout
    while (message := await Message.objects.aget(id=message_id)).stream_seq < seq:
        assert time.monotonic() < deadline, "the answer was not checkpointed"
        await asyncio.sleep(0.02)
    return message


def test_a_finished_answers_stream_carries_each_text_parts_html(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    from asgiref.sync import async_to_sync

    fake_llm.enqueue(Script(text="One.", tool_calls=[ADD_CALL]), Script(text="*Two.*"))
    answer = _finished(_start(alice_client, tool_model, "Count").id)

    async def read() -> bytes:
        reader = AsyncClient()
        await reader.aforce_login(alice)
        response = await reader.get(f"/c/{answer.chat_id}/m/{answer.id}/stream")
        return b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]

    ((_, kind, data),) = sse_events(async_to_sync(read)())
    assert kind == "done"
    assert [html.strip() for html in data["parts_html"]] == ["<p>One.</p>", "<p><em>Two.</em></p>"]
