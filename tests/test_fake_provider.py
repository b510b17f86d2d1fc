"""The fake OpenAI-compatible provider behaves like a real one, over real HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from tests.fake_provider import MALFORMED_LINE, FakeProvider, Script, ToolCall

HELLO = [{"role": "user", "content": "Say something nice"}]


@dataclass
class StreamRead:
    """What a client saw of one streamed answer."""

    status: int
    headers: dict[str, str]
    data_lines: list[str] = field(default_factory=list)
    done: bool = False
    error: Exception | None = None

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.data_lines]

    @property
    def text(self) -> str:
        return "".join(
            chunk["choices"][0]["delta"].get("content") or ""
            for chunk in self.chunks
            if chunk.get("choices")
        )

    @property
    def finish_reasons(self) -> list[str]:
        return [
            chunk["choices"][0]["finish_reason"]
            for chunk in self.chunks
            if chunk.get("choices") and chunk["choices"][0]["finish_reason"]
        ]


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def chat_body(*, stream: bool, include_usage: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "fake-model", "messages": HELLO, "stream": stream, **extra}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


async def read_stream(response: aiohttp.ClientResponse) -> StreamRead:
    read = StreamRead(status=response.status, headers=dict(response.headers))
    try:
        async for raw_line in response.content:
            line = raw_line.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                read.done = True
            else:
                read.data_lines.append(data)
    except aiohttp.ClientError as exc:
        read.error = exc
    return read


async def stream_chat(http: aiohttp.ClientSession, fake: FakeProvider, **body: Any) -> StreamRead:
    async with http.post(
        f"{fake.base_url}/chat/completions", json=chat_body(stream=True, **body)
    ) as response:
        return await read_stream(response)


async def next_data_line(response: aiohttp.ClientResponse) -> str:
    while True:
        line = (await response.content.readline()).decode().strip()
        if line.startswith("data: "):
            return line.removeprefix("data: ")


# -- streaming --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_streams_the_scripted_text_and_reports_usage(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(
        Script(text="The quick brown fox jumps.", prompt_tokens=11, completion_tokens=7)
    )

    read = await stream_chat(http, fake_llm, include_usage=True)

    assert read.status == 200
    assert read.headers["Content-Type"].startswith("text/event-stream")
    assert read.text == "The quick brown fox jumps."
    assert read.done and read.error is None
    chunks = read.chunks
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:5]] == [
        "The ",
        "quick ",
        "brown ",
        "fox ",
        "jumps.",
    ]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"fake-model"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


@pytest.mark.asyncio
async def test_it_sends_usage_only_when_the_request_asks_for_it(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="No usage here"))

    read = await stream_chat(http, fake_llm)

    assert read.done
    assert all(chunk["choices"] for chunk in read.chunks)
    assert all("usage" not in chunk for chunk in read.chunks)


@pytest.mark.asyncio
async def test_it_counts_words_as_tokens_when_the_script_sets_no_usage(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="one two three"))

    read = await stream_chat(http, fake_llm, include_usage=True)

    # "Say something nice" is three words.
    assert read.chunks[-1]["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "total_tokens": 6,
    }


@pytest.mark.asyncio
async def test_it_echoes_the_last_user_message_when_no_script_is_queued(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    messages = [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": [{"type": "text", "text": "Tell me a joke"}]},
    ]

    read = await stream_chat(http, fake_llm, messages=messages)

    assert read.text == "Hello from the fake provider. You said: Tell me a joke"
    contents = [c["choices"][0]["delta"].get("content") for c in read.chunks[:-1]]
    assert len(contents) == len(set(contents)) > 5
    assert read.finish_reasons == ["stop"]


@pytest.mark.asyncio
async def test_it_consumes_scripts_in_the_order_they_were_queued(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="first"), Script(text="second"))

    first = await stream_chat(http, fake_llm)
    second = await stream_chat(http, fake_llm)
    third = await stream_chat(http, fake_llm)

    assert [first.text, second.text] == ["first", "second"]
    assert third.text.startswith("Hello from the fake provider.")
    assert fake_llm.pending_scripts == 0


@pytest.mark.asyncio
async def test_it_echoes_the_scripted_model_and_finish_reason(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(
        Script(text="cut short", model="fake-model-2026-01-01", finish_reason="length")
    )

    read = await stream_chat(http, fake_llm)

    assert {chunk["model"] for chunk in read.chunks} == {"fake-model-2026-01-01"}
    assert read.finish_reasons == ["length"]


@pytest.mark.asyncio
async def test_it_streams_reasoning_before_the_text_and_counts_it_in_usage(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(reasoning="Let me think about it.", text="Forty-two."))

    read = await stream_chat(http, fake_llm, include_usage=True)

    deltas = [chunk["choices"][0]["delta"] for chunk in read.chunks if chunk["choices"]]
    reasoning = "".join(delta.get("reasoning_content") or "" for delta in deltas)
    assert reasoning == "Let me think about it."
    assert deltas[0] == {"role": "assistant", "reasoning_content": "Let "}
    assert read.text == "Forty-two."
    first_text = next(i for i, delta in enumerate(deltas) if delta.get("content"))
    assert all("reasoning_content" not in delta for delta in deltas[first_text:])
    usage = read.chunks[-1]["usage"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 5}
    assert usage["completion_tokens"] == 6


@pytest.mark.asyncio
async def test_it_can_send_reasoning_in_the_reasoning_field(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(reasoning=["Hm", "m."], reasoning_field="reasoning", text="Yes."))

    read = await stream_chat(http, fake_llm)

    deltas = [chunk["choices"][0]["delta"] for chunk in read.chunks]
    assert "".join(delta.get("reasoning") or "" for delta in deltas) == "Hmm."
    assert all("reasoning_content" not in delta for delta in deltas)


@pytest.mark.asyncio
async def test_it_streams_tool_call_deltas_by_index_that_reassemble_into_the_calls(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(
        Script(
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_weather"),
                ToolCall("search_archive", '{"query": "holiday photos"}', parts=4),
            ]
        )
    )

    read = await stream_chat(http, fake_llm)

    calls: dict[int, dict[str, str]] = {}
    argument_chunks = 0
    for chunk in read.chunks:
        for piece in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(piece["index"], {"id": "", "name": "", "arguments": ""})
            if "id" in piece:
                assert piece["type"] == "function"
                call["id"] = piece["id"]
                call["name"] = piece["function"]["name"]
            if piece["function"].get("arguments"):
                argument_chunks += 1
            call["arguments"] += piece["function"]["arguments"]
    assert calls[0]["id"] == "call_weather"
    assert calls[0]["name"] == "get_weather"
    assert orjson.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert calls[1]["id"] and calls[1]["id"] != "call_weather"
    assert calls[1]["name"] == "search_archive"
    assert calls[1]["arguments"] == '{"query": "holiday photos"}'
    assert argument_chunks == 3 + 4
    assert read.text == ""
    assert read.finish_reasons == ["tool_calls"]
    assert read.done


# -- non-streaming ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_answers_a_non_streaming_request_with_one_completion(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="A short title", reasoning="Titles are short", prompt_tokens=20))

    async with http.post(
        f"{fake_llm.base_url}/chat/completions", json=chat_body(stream=False)
    ) as response:
        body = await response.json()

    assert response.status == 200
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "fake-model"
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "A short title"
    assert choice["message"]["reasoning_content"] == "Titles are short"
    assert body["usage"] == {
        "prompt_tokens": 20,
        "completion_tokens": 6,
        "total_tokens": 26,
        "completion_tokens_details": {"reasoning_tokens": 3},
    }


@pytest.mark.asyncio
async def test_it_returns_tool_calls_in_a_non_streaming_answer(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(tool_calls=[ToolCall("get_time", {"zone": "UTC"}, id="call_1")]))

    async with http.post(
        f"{fake_llm.base_url}/chat/completions", json=chat_body(stream=False)
    ) as response:
        choice = (await response.json())["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"zone":"UTC"}'},
        }
    ]


# -- misbehaviour -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_paces_tokens_by_the_scripted_delay(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="a b c d e", delay=0.04))

    started = time.monotonic()
    read = await stream_chat(http, fake_llm)

    assert read.text == "a b c d e"
    assert time.monotonic() - started >= 5 * 0.04


@pytest.mark.asyncio
async def test_it_goes_quiet_once_after_pause_after_chunks_then_carries_on(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="one two three four", pause_after=2, pause=0.5))

    async with http.post(
        f"{fake_llm.base_url}/chat/completions", json=chat_body(stream=True)
    ) as response:
        seen = [orjson.loads(await next_data_line(response)) for _ in range(2)]
        quiet_from = time.monotonic()
        rest = await read_stream(response)

    assert time.monotonic() - quiet_from >= 0.5
    assert [chunk["choices"][0]["delta"]["content"] for chunk in seen] == ["one ", "two "]
    assert rest.text == "three four"
    assert rest.done


@pytest.mark.asyncio
async def test_it_hangs_after_stall_after_chunks_until_released(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    script = Script(text="one two three four", stall_after=2)
    fake_llm.enqueue(script)

    async with http.post(
        f"{fake_llm.base_url}/chat/completions", json=chat_body(stream=True)
    ) as response:
        seen = [orjson.loads(await next_data_line(response)) for _ in range(2)]
        assert await script.wait_until_stalled_async()
        assert script.is_stalled
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(next_data_line(response), timeout=0.2)

        fake_llm.release_stalls()
        rest = await read_stream(response)

    assert [chunk["choices"][0]["delta"]["content"] for chunk in seen] == ["one ", "two "]
    assert rest.text == "three four"
    assert rest.done
    assert not script.is_stalled


@pytest.mark.asyncio
async def test_it_stops_answering_a_stalled_stream_when_the_client_disconnects(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    script = Script(text="never finished", stall_after=1)
    fake_llm.enqueue(script)

    response = await http.post(f"{fake_llm.base_url}/chat/completions", json=chat_body(stream=True))
    await next_data_line(response)
    assert await script.wait_until_stalled_async()
    assert fake_llm.answers_in_progress == 1
    response.close()

    for _ in range(200):
        if fake_llm.answers_in_progress == 0:
            break
        await asyncio.sleep(0.01)
    assert fake_llm.answers_in_progress == 0


@pytest.mark.asyncio
async def test_it_drops_the_connection_after_fail_after_chunks(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="one two three four", fail_after=2))

    read = await stream_chat(http, fake_llm)

    assert read.text == "one two "
    assert isinstance(read.error, aiohttp.ClientPayloadError)
    assert not read.done
    assert read.finish_reasons == []


@pytest.mark.asyncio
async def test_it_drops_a_non_streaming_request_without_answering(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(fail_after=0))

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.post(f"{fake_llm.base_url}/chat/completions", json=chat_body(stream=False))


@pytest.mark.asyncio
async def test_it_sends_an_error_event_after_error_after_chunks(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(
        Script(text="one two three", error_after=2, error_message="Overloaded", error_code="busy")
    )

    read = await stream_chat(http, fake_llm)

    assert read.error is None
    assert not read.done
    assert read.text == "one two "
    assert read.chunks[-1] == {
        "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": "busy"}
    }


@pytest.mark.asyncio
async def test_it_sends_garbage_after_malformed_after_chunks(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="one two three", malformed_after=1))

    read = await stream_chat(http, fake_llm)

    assert not read.done
    assert orjson.loads(read.data_lines[0])["choices"][0]["delta"]["content"] == "one "
    assert read.data_lines[1] == MALFORMED_LINE.decode().strip().removeprefix("data: ")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(read.data_lines[1])


@pytest.mark.asyncio
async def test_it_answers_the_scripted_http_status_with_retry_after(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(http_status=429, retry_after=7, error_message="Slow down"))

    async with http.post(
        f"{fake_llm.base_url}/chat/completions", json=chat_body(stream=True)
    ) as response:
        body = await response.json()

    assert response.status == 429
    assert response.headers["Retry-After"] == "7"
    assert body == {
        "error": {
            "message": "Slow down",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


@pytest.mark.asyncio
async def test_it_stops_promptly_with_a_stalled_stream_open(http: aiohttp.ClientSession) -> None:
    server = FakeProvider().start()
    script = Script(text="held open", stall_after=1)
    server.enqueue(script)
    response = await http.post(f"{server.base_url}/chat/completions", json=chat_body(stream=True))
    await next_data_line(response)
    assert await script.wait_until_stalled_async()

    started = time.monotonic()
    await asyncio.to_thread(server.stop)

    assert time.monotonic() - started < 3
    rest = await read_stream(response)
    assert not rest.done
    assert rest.error is not None


# -- models, auth, records --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_it_lists_the_configured_models(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{fake_llm.base_url}/models") as response:
        default = await response.json()
    fake_llm.set_models(["alpha", "beta", "gamma"])
    async with http.get(f"{fake_llm.base_url}/models") as response:
        configured = await response.json()

    assert default["object"] == "list"
    assert [model["id"] for model in default["data"]] == ["fake-model", "fake-model-mini"]
    assert {model["object"] for model in default["data"]} == {"model"}
    assert [model["id"] for model in configured["data"]] == ["alpha", "beta", "gamma"]


@pytest.mark.asyncio
async def test_it_refuses_a_wrong_api_key_with_401_when_a_key_is_required(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.require_api_key("sk-right")
    url = f"{fake_llm.base_url}/chat/completions"

    async with http.post(
        url, json=chat_body(stream=False), headers={"Authorization": "Bearer sk-wrong"}
    ) as wrong:
        wrong_body = await wrong.json()
    async with http.get(f"{fake_llm.base_url}/models") as missing:
        pass
    async with http.post(
        url, json=chat_body(stream=False), headers={"Authorization": "Bearer sk-right"}
    ) as right:
        pass

    assert wrong.status == 401
    assert wrong_body["error"]["code"] == "invalid_api_key"
    assert wrong_body["error"]["type"] == "invalid_request_error"
    assert "sk-right" not in wrong_body["error"]["message"]
    assert missing.status == 401
    assert right.status == 200


@pytest.mark.asyncio
async def test_it_records_every_request_with_its_headers_and_body(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    script = Script(text="recorded")
    fake_llm.enqueue(script)

    await stream_chat(http, fake_llm, temperature=0.2)
    await http.get(f"{fake_llm.base_url}/models", headers={"Authorization": "Bearer sk-second"})

    chat, models = await fake_llm.wait_for_requests_async(2)
    assert (chat.method, chat.path) == ("POST", "/v1/chat/completions")
    assert chat.json["messages"] == HELLO
    assert chat.json["temperature"] == 0.2
    assert chat.headers["content-type"] == "application/json"
    assert chat.script is script
    assert (models.method, models.path, models.json) == ("GET", "/v1/models", None)
    assert models.authorization == "Bearer sk-second"
    assert models.api_key == "sk-second"
    assert fake_llm.chat_requests == [chat]
    assert fake_llm.last_request is models


@pytest.mark.asyncio
async def test_reset_forgets_scripts_and_requests_and_restores_the_defaults(
    fake_llm: FakeProvider, http: aiohttp.ClientSession
) -> None:
    fake_llm.enqueue(Script(text="never used"))
    fake_llm.set_models(["other"])
    fake_llm.require_api_key("sk-needed")
    async with http.get(f"{fake_llm.base_url}/models"):
        pass

    fake_llm.reset()

    assert fake_llm.pending_scripts == 0
    assert fake_llm.requests == []
    async with http.get(f"{fake_llm.base_url}/models") as response:
        models = await response.json()
    assert [model["id"] for model in models["data"]] == ["fake-model", "fake-model-mini"]


# -- LiteLLM as the client --------------------------------------------------------------------


def import_litellm() -> Any:
    # Inside the tests: the import takes seconds, and the local cost map keeps it offline.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


@pytest.mark.asyncio
async def test_litellm_reassembles_a_stream_and_gets_the_scripted_usage(
    fake_llm: FakeProvider,
) -> None:
    litellm = import_litellm()
    text = "Streams from the fake provider reach LiteLLM intact, word by word."
    fake_llm.enqueue(Script(text=text, prompt_tokens=13, completion_tokens=17))

    response = await litellm.acompletion(
        model="openai/fake-model",
        api_base=fake_llm.base_url,
        api_key="sk-test",
        messages=HELLO,
        stream=True,
        extra_body={"stream_options": {"include_usage": True}},
    )
    chunks = [chunk async for chunk in response]

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    # LiteLLM swallows the usage chunk here and keeps the provider's numbers on the last chunk.
    usage = litellm.stream_chunk_builder(chunks, messages=HELLO).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (13, 17, 30)
    request = fake_llm.chat_requests[0]
    assert request.api_key == "sk-test"
    assert request.json["stream_options"] == {"include_usage": True}


@pytest.mark.asyncio
async def test_litellm_reads_a_non_streaming_completion(fake_llm: FakeProvider) -> None:
    litellm = import_litellm()
    fake_llm.enqueue(Script(text="A title for the chat", prompt_tokens=9, completion_tokens=5))

    response = await litellm.acompletion(
        model="openai/fake-model",
        api_base=fake_llm.base_url,
        api_key="sk-test",
        messages=HELLO,
    )

    assert response.choices[0].message.content == "A title for the chat"
    assert response.choices[0].finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (9, 5)
    assert not fake_llm.chat_requests[0].json.get("stream")
