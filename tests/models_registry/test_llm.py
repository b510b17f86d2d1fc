"""llm.py against the fake OpenAI-compatible server, through both engines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from models_registry.calls import (
    ENGINE_LITELLM,
    ENGINE_OPENAI_COMPATIBLE,
    CallTarget,
    Engine,
    FinishDelta,
    LLMError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderUnreachableError,
    StreamInterruptedError,
    TextDelta,
    Usage,
    UsageDelta,
)
from models_registry.llm import (
    StreamAccumulator,
    complete,
    provider_ping,
    stream_collect,
    stream_completion,
)
from models_registry.models import Model
from models_registry.resolver import aresolve
from tests.fake_provider import FakeProvider, Script, ToolCall
from tests.models_registry.helpers import FAKE_KEY

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("llm_sessions")]

ENGINES: list[Engine] = [ENGINE_OPENAI_COMPATIBLE, ENGINE_LITELLM]
KEY = "sk-per-call-key-7788"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def _target(fake: FakeProvider, *, api_key: str | None = KEY) -> CallTarget:
    return CallTarget(
        model_id="fakelab:fake-model",
        engine=ENGINE_OPENAI_COMPATIBLE,
        provider_slug="fake",
        provider_kind="custom",
        provider_model="fake-model",
        api_base=fake.base_url,
        api_key=api_key,
    )


def _rich_script() -> Script:
    return Script(
        reasoning="The user wants weather, so I call the tool.",
        text="Let me check that for you.",
        tool_calls=[
            ToolCall(name="weather", arguments={"city": "Paris"}, id="call_weather_1", parts=4),
            ToolCall(name="weather", arguments={"city": "Lyon"}, id="call_weather_2", parts=2),
        ],
        prompt_tokens=31,
        completion_tokens=45,
        reasoning_tokens=12,
    )


async def _run(fake: FakeProvider, engine: Engine, **kwargs: Any) -> StreamAccumulator:
    stream = stream_completion(target=_target(fake), messages=MESSAGES, engine=engine, **kwargs)
    return await stream_collect(stream)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_stream_yields_reasoning_text_tool_calls_usage_and_finish(
    fake_llm: FakeProvider, engine: Engine
) -> None:
    fake_llm.require_api_key(KEY)
    fake_llm.enqueue(_rich_script())

    result = await _run(fake_llm, engine, tools=TOOLS)

    assert result.reasoning == "The user wants weather, so I call the tool."
    assert result.text == "Let me check that for you."
    assert [(call.id, call.name, call.arguments) for call in result.tool_calls] == [
        ("call_weather_1", "weather", '{"city":"Paris"}'),
        ("call_weather_2", "weather", '{"city":"Lyon"}'),
    ]
    assert result.finish_reason == "tool_calls"
    assert result.usage == Usage(input_tokens=31, output_tokens=45, reasoning_tokens=12)


async def test_both_engines_give_identical_results(fake_llm: FakeProvider) -> None:
    results = []
    for engine in ENGINES:
        fake_llm.enqueue(_rich_script())
        results.append(await _run(fake_llm, engine, tools=TOOLS))

    lean, litellm = results
    assert lean.text == litellm.text
    assert lean.reasoning == litellm.reasoning
    assert lean.tool_calls == litellm.tool_calls
    assert lean.usage == litellm.usage
    assert lean.finish_reason == litellm.finish_reason


async def test_both_engines_yield_the_same_delta_sequence(fake_llm: FakeProvider) -> None:
    sequences = []
    for engine in ENGINES:
        fake_llm.enqueue(_rich_script())
        stream = stream_completion(target=_target(fake_llm), messages=MESSAGES, engine=engine)
        sequences.append([delta async for delta in stream])

    assert sequences[0] == sequences[1]
    assert isinstance(sequences[0][-1], FinishDelta)
    assert isinstance(sequences[0][-2], UsageDelta)


@pytest.mark.parametrize("engine", ENGINES)
async def test_the_key_is_sent_with_each_call_and_usage_is_requested(
    fake_llm: FakeProvider, engine: Engine
) -> None:
    await _run(fake_llm, engine)

    request = fake_llm.chat_requests[-1]
    assert request.api_key == KEY
    assert request.json["model"] == "fake-model"
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("engine", ENGINES)
async def test_reasoning_in_the_openrouter_field_is_read_too(
    fake_llm: FakeProvider, engine: Engine
) -> None:
    fake_llm.enqueue(Script(reasoning="Thinking aloud.", reasoning_field="reasoning", text="Hi."))

    result = await _run(fake_llm, engine)

    assert (result.reasoning, result.text) == ("Thinking aloud.", "Hi.")


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_provider_that_sends_no_usage_still_finishes(
    fake_llm: FakeProvider, engine: Engine
) -> None:
    fake_llm.enqueue(Script(text="No usage here.", send_usage=False))

    result = await _run(fake_llm, engine)

    assert result.text == "No usage here."
    assert result.usage is None
    assert result.finish_reason == "stop"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, ProviderAuthError),
        (429, ProviderRateLimitError),
        (500, ProviderServerError),
        (400, ProviderBadRequestError),
    ],
)
async def test_an_http_error_surfaces_as_a_typed_error(
    fake_llm: FakeProvider, engine: Engine, status: int, error_class: type[LLMError]
) -> None:
    fake_llm.enqueue(Script(http_status=status, error_message="Nope."))

    with pytest.raises(error_class) as caught:
        await _run(fake_llm, engine)

    assert caught.value.status == status
    assert "Nope." in caught.value.message
    assert len(fake_llm.chat_requests) == 1  # no hidden retries


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_wrong_key_is_an_auth_error(fake_llm: FakeProvider, engine: Engine) -> None:
    fake_llm.require_api_key("sk-the-right-one")

    with pytest.raises(ProviderAuthError):
        await _run(fake_llm, engine)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_rate_limit_says_when_to_retry(fake_llm: FakeProvider, engine: Engine) -> None:
    fake_llm.enqueue(Script(http_status=429, retry_after=7))

    with pytest.raises(ProviderRateLimitError) as caught:
        await _run(fake_llm, engine)

    assert caught.value.retry_after == 7
    assert caught.value.retryable


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "misbehaviour",
    [{"fail_after": 3}, {"error_after": 3}, {"malformed_after": 3}],
    ids=["dropped", "error-event", "garbage"],
)
async def test_a_stream_broken_midway_is_interrupted_after_the_deltas_it_gave(
    fake_llm: FakeProvider, engine: Engine, misbehaviour: dict[str, Any]
) -> None:
    fake_llm.enqueue(Script(text="one two three four five six", **misbehaviour))
    received: list[str] = []

    with pytest.raises(StreamInterruptedError):
        stream = stream_completion(target=_target(fake_llm), messages=MESSAGES, engine=engine)
        async for delta in stream:
            if isinstance(delta, TextDelta):
                received.append(delta.text)

    assert "".join(received) == "one two three "


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_stalled_stream_times_out(fake_llm: FakeProvider, engine: Engine) -> None:
    fake_llm.enqueue(Script(text="one two three", stall_after=1))

    with pytest.raises(ProviderTimeoutError):
        await _run(fake_llm, engine, idle_timeout=0.3)


@pytest.mark.parametrize("engine", ENGINES)
async def test_an_unreachable_provider_is_a_typed_error(engine: Engine) -> None:
    target = CallTarget(
        model_id="fakelab:fake-model",
        engine=ENGINE_OPENAI_COMPATIBLE,
        provider_slug="fake",
        provider_kind="custom",
        provider_model="fake-model",
        api_base="http://127.0.0.1:9/v1",
        api_key=KEY,
    )

    with pytest.raises(ProviderUnreachableError):
        await stream_collect(stream_completion(target=target, messages=MESSAGES, engine=engine))


async def test_the_lean_engine_reuses_one_http_session(fake_llm: FakeProvider) -> None:
    from models_registry import llm

    await _run(fake_llm, ENGINE_OPENAI_COMPATIBLE)
    first = llm._session()
    await _run(fake_llm, ENGINE_OPENAI_COMPATIBLE)

    assert llm._session() is first


async def test_stopping_early_closes_the_stream(fake_llm: FakeProvider) -> None:
    fake_llm.enqueue(Script(text="one two three four five", delay=0.05))
    stream = stream_completion(target=_target(fake_llm), messages=MESSAGES)

    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert first == TextDelta("one ")


async def test_a_non_streaming_call_returns_the_whole_answer(fake_llm: FakeProvider) -> None:
    fake_llm.require_api_key(KEY)
    fake_llm.enqueue(Script(text="Weather in Paris", prompt_tokens=12, completion_tokens=3))

    completion = await complete(target=_target(fake_llm), messages=MESSAGES, max_tokens=20)

    assert completion.text == "Weather in Paris"
    assert completion.usage == Usage(input_tokens=12, output_tokens=3)
    assert completion.finish_reason == "stop"
    assert not fake_llm.chat_requests[-1].json.get("stream")


async def test_a_non_streaming_call_surfaces_errors_typed(fake_llm: FakeProvider) -> None:
    fake_llm.enqueue(Script(http_status=429))

    with pytest.raises(ProviderRateLimitError):
        await complete(target=_target(fake_llm), messages=MESSAGES)


async def test_a_provider_ping_lists_models_with_the_key(fake_llm: FakeProvider) -> None:
    fake_llm.require_api_key(KEY)

    report = await provider_ping(kind="custom", api_base=fake_llm.base_url, api_key=KEY)

    assert report == "Connected: the provider lists 2 models."
    with pytest.raises(ProviderAuthError):
        await provider_ping(kind="custom", api_base=fake_llm.base_url, api_key="sk-wrong")


async def test_the_lean_engine_refuses_a_provider_that_is_not_openai_compatible() -> None:
    target = CallTarget(
        model_id="google:gemini-3.8-flash",
        engine=ENGINE_LITELLM,
        provider_slug="google",
        provider_kind="google",
        provider_model="gemini-3.8-flash",
        api_base=None,
        api_key="k",
    )

    with pytest.raises(LLMError):
        stream_completion(target=target, messages=MESSAGES, engine=ENGINE_OPENAI_COMPATIBLE)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
async def test_a_resolved_model_streams_with_its_stored_key(
    fake_model: Model, fake_llm: FakeProvider, engine: Engine
) -> None:
    fake_llm.enqueue(Script(text="Resolved and streamed.", prompt_tokens=5, completion_tokens=3))

    target = await aresolve(None, fake_model.id)
    result = await stream_collect(
        stream_completion(target=target, messages=MESSAGES, engine=engine)
    )

    assert result.text == "Resolved and streamed."
    assert fake_llm.chat_requests[-1].api_key == FAKE_KEY
    assert result.usage is not None
    assert target.pricing.cost(result.usage) == Decimal("0.000017")  # 5 x $1 + 3 x $4 per million


async def test_importing_litellm_on_first_use_does_not_stall_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import time

    from models_registry import llm

    module = llm._litellm()  # the real module, imported once for the whole run

    def slow_import() -> Any:
        time.sleep(0.3)  # the import's CPU, as seen by the loop
        return module

    monkeypatch.setattr(llm, "_litellm_module", None)
    monkeypatch.setattr(llm, "_litellm", slow_import)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    assert await llm._litellm_loaded() is module
    ticking.cancel()
    assert ticks >= 10  # the loop kept serving while the import ran in a thread
