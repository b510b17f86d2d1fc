"""A fake OpenAI-compatible LLM provider: a real aiohttp server in a thread, scripted by tests.

Tests queue `Script`s on a `FakeProvider`; each chat request consumes the oldest one (or gets a
deterministic echo reply when the queue is empty). A script decides what the answer contains
(text, reasoning, tool calls, usage) and how it misbehaves (slow tokens, a stall, a dropped
connection, a mid-stream error, garbage, an HTTP error status).

Chunk counting: a streamed answer is a list of `data:` events, one per token (the first also
carries the assistant role), one per tool-call piece, then the finish-reason chunk and, when
the request asked for it, the usage chunk. `stall_after=N`, `fail_after=N`, `error_after=N`,
`malformed_after=N` and `pause_after=N` act after the first N of those events (or just before
`[DONE]` when the stream is shorter), so with plain text N is the number of tokens the client
has seen.

Careless gateways: `Script(echo_headers=True)` appends the request's headers to the script's
error text (an HTTP error status or a mid-stream error), and `echo_headers_in_errors(status)`
answers every request, model lists included, with such an error.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web
from multidict import CIMultiDict

DEFAULT_MODELS: tuple[str, ...] = ("fake-model", "fake-model-mini")
DEFAULT_REPLY_PREFIX = "Hello from the fake provider. You said:"
MALFORMED_LINE = b"data: {this is not json, the fake provider was told to send garbage\n\n"

# Polling keeps stalls simple to release from any thread (tests, fixtures, stop()) without
# handing asyncio objects across threads; 10 ms is far below anything a test waits for.
_POLL_SECONDS = 0.01
_MODEL_CREATED = 1_700_000_000

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}

JsonDict = dict[str, Any]


def split_tokens(text: str) -> list[str]:
    """Split text into word tokens that join back into exactly the same text."""
    return re.findall(r"\S+\s*|\s+", text)


def _as_tokens(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return split_tokens(value)
    return list(value)


def _split_evenly(text: str, parts: int) -> list[str]:
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces or [""]


def error_body(
    message: str, *, status: int, type_: str | None = None, code: str | None = None
) -> JsonDict:
    """Build an OpenAI-style error object for `status`, guessing type and code when not given."""
    default_type, default_code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "param": None,
            "code": code or default_code,
        }
    }


def headers_echo(headers: Mapping[str, str], *, value_limit: int | None = None) -> str:
    """The request's headers as a careless gateway quotes them in an error text (some cut
    each value to `value_limit` characters)."""
    return "Request headers: " + "; ".join(
        f"{name}: {value[:value_limit]}" for name, value in headers.items()
    )


@dataclass
class ToolCall:
    """One function call the fake model makes; its arguments arrive split over `parts` chunks."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None
    parts: int = 3

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(dict(self.arguments)).decode()

    def argument_pieces(self) -> list[str]:
        return _split_evenly(self.arguments_json(), self.parts)


@dataclass(eq=False)
class Script:
    """What the next chat request gets back, and how the answer misbehaves.

    `text` None means the default echo reply, unless the script makes tool calls (then no
    text). A string is split into word tokens; a list is used as the tokens themselves.
    In a non-streaming answer there are no chunks, so the `*_after` triggers act on the whole
    answer whatever N is: stall hangs before answering, fail drops the connection without an
    answer, error answers 200 with an `{"error": ...}` body (as OpenRouter does) and malformed
    answers 200 with a garbage body.

    `delay` is slept before each token chunk (non-streaming: once per token, in total);
    `initial_delay` before anything, status line included; `pause` once, after `pause_after`
    chunks (a quiet spell mid-answer that ends by itself, unlike a stall). `http_status` answers an
    OpenAI-style error (with `Retry-After` when `retry_after` is set) instead of a completion.
    Usage counts words as tokens unless `prompt_tokens`, `completion_tokens` or
    `reasoning_tokens` say otherwise; `send_usage=False` omits the usage chunk even when asked.
    A script answers one request: queue separate (or the same, for identical) scripts for
    retries, and note that stall state is kept on the script object.
    """

    text: str | Sequence[str] | None = None
    reasoning: str | Sequence[str] | None = None
    # "reasoning_content" is what DeepSeek and vLLM send; OpenRouter and Ollama send "reasoning".
    reasoning_field: str = "reasoning_content"
    # Anthropic-style reasoning blocks as LiteLLM streams them (`delta.thinking_blocks`): each
    # block's thinking, then its signature in a chunk of its own.
    thinking_blocks: Sequence[Mapping[str, Any]] = ()
    tool_calls: Sequence[ToolCall] = ()
    delay: float = 0.0
    initial_delay: float = 0.0
    stall_after: int | None = None
    pause_after: int | None = None
    pause: float = 0.0
    fail_after: int | None = None
    error_after: int | None = None
    malformed_after: int | None = None
    http_status: int | None = None
    retry_after: float | None = None
    error_message: str = "The fake provider was told to fail."
    error_type: str | None = None
    error_code: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    send_usage: bool = True
    echo_headers: bool = False
    _released: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _stalled: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def release(self) -> None:
        """Let a stalled stream carry on (or one that will stall: releasing early is allowed)."""
        self._released.set()

    @property
    def is_stalled(self) -> bool:
        return self._stalled.is_set() and not self._released.is_set()

    def wait_until_stalled(self, timeout: float = 5.0) -> bool:
        """Block until the server reaches the stall; only for sync tests (it blocks the loop)."""
        return self._stalled.wait(timeout)

    async def wait_until_stalled_async(self, timeout: float = 5.0) -> bool:
        """Wait until the server reaches the stall without blocking the test's event loop."""
        deadline = time.monotonic() + timeout
        while not self._stalled.is_set():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_SECONDS)
        return True


@dataclass
class RecordedRequest:
    """One request as the fake provider received it."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes
    json: Any
    received_at: float
    script: Script | None = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def api_key(self) -> str | None:
        value = self.authorization
        if value is None or not value.startswith("Bearer "):
            return None
        return value.removeprefix("Bearer ")

    @property
    def messages(self) -> list[JsonDict]:
        if not isinstance(self.json, dict):
            return []
        return list(self.json.get("messages") or [])


_RECORD = web.RequestKey("record", RecordedRequest)


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def default_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text answered when no script is queued: it echoes the last user message."""
    last_user_text = next(
        (_message_text(message) for message in reversed(messages) if message.get("role") == "user"),
        "",
    )
    return f"{DEFAULT_REPLY_PREFIX} {last_user_text}".rstrip()


@dataclass
class _Answer:
    """A script resolved against one request: everything needed to write either format."""

    response_id: str
    created: int
    model: str
    text_tokens: list[str]
    reasoning_tokens: list[str]
    reasoning_field: str
    thinking_blocks: list[Mapping[str, Any]]
    tool_calls: list[tuple[str, ToolCall]]
    finish_reason: str
    usage: JsonDict

    @classmethod
    def resolve(cls, script: Script, request_json: JsonDict, *, response_id: str) -> _Answer:
        messages = request_json.get("messages") or []
        tool_calls = [
            (call.id or f"call_fake_{response_id[-6:]}_{index}", call)
            for index, call in enumerate(script.tool_calls)
        ]
        if script.text is None and not tool_calls:
            text_tokens = split_tokens(default_reply(messages))
        else:
            text_tokens = _as_tokens(script.text)
        reasoning_tokens = _as_tokens(script.reasoning)
        finish_reason = script.finish_reason or ("tool_calls" if tool_calls else "stop")
        return cls(
            response_id=response_id,
            created=int(time.time()),
            model=script.model or str(request_json.get("model") or DEFAULT_MODELS[0]),
            text_tokens=text_tokens,
            reasoning_tokens=reasoning_tokens,
            reasoning_field=script.reasoning_field,
            thinking_blocks=list(script.thinking_blocks),
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=cls._usage(script, messages, text_tokens, reasoning_tokens, tool_calls),
        )

    @staticmethod
    def _usage(
        script: Script,
        messages: Sequence[Mapping[str, Any]],
        text_tokens: list[str],
        reasoning_tokens: list[str],
        tool_calls: list[tuple[str, ToolCall]],
    ) -> JsonDict:
        # Words stand in for tokens: deterministic, and easy to predict in a test.
        prompt = script.prompt_tokens
        if prompt is None:
            prompt = max(1, sum(len(_message_text(message).split()) for message in messages))
        reasoning = script.reasoning_tokens
        if reasoning is None:
            reasoning = len(reasoning_tokens)
        completion = script.completion_tokens
        if completion is None:
            tool_pieces = sum(len(call.argument_pieces()) + 1 for _, call in tool_calls)
            completion = len(text_tokens) + reasoning + tool_pieces
        usage: JsonDict = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if reasoning or script.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return usage

    def _chunk(self, delta: JsonDict, finish_reason: str | None, include_usage: bool) -> JsonDict:
        chunk: JsonDict = {
            "id": self.response_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            # OpenAI sends an explicit null on every chunk before the usage chunk.
            chunk["usage"] = None
        return chunk

    def stream_events(
        self, *, include_usage: bool, send_usage: bool
    ) -> list[tuple[JsonDict, bool]]:
        """Return the `data:` payloads in order, each flagged True when it carries a token."""
        deltas: list[JsonDict] = [{self.reasoning_field: token} for token in self.reasoning_tokens]
        for block in self.thinking_blocks:
            unsigned = {
                "type": "thinking",
                "thinking": block.get("thinking", ""),
                "signature": None,
            }
            signature = {"type": "thinking", "thinking": "", "signature": block.get("signature")}
            deltas += [{"thinking_blocks": [unsigned]}, {"thinking_blocks": [signature]}]
        deltas += [{"content": token} for token in self.text_tokens]
        for index, (call_id, call) in enumerate(self.tool_calls):
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            deltas += [
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in call.argument_pieces()
            ]
        if not deltas:
            deltas.append({"content": ""})
        deltas[0] = {"role": "assistant", **deltas[0]}

        events = [(self._chunk(delta, None, include_usage), True) for delta in deltas]
        events.append((self._chunk({}, self.finish_reason, include_usage), False))
        if include_usage and send_usage:
            usage_chunk = self._chunk({}, None, include_usage)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self.usage
            events.append((usage_chunk, False))
        return events

    def completion(self) -> JsonDict:
        message: JsonDict = {
            "role": "assistant",
            "content": "".join(self.text_tokens)
            if self.text_tokens or not self.tool_calls
            else None,
            "refusal": None,
        }
        if self.reasoning_tokens:
            message[self.reasoning_field] = "".join(self.reasoning_tokens)
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for call_id, call in self.tool_calls
            ]
        return {
            "id": self.response_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
        }

    def token_count(self) -> int:
        return len(self.text_tokens) + len(self.reasoning_tokens) + len(self.tool_calls)


def _sse(payload: JsonDict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _json_response(
    payload: JsonDict, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class FakeProvider:
    """An OpenAI-compatible server on 127.0.0.1 that answers from a queue of scripts."""

    def __init__(
        self, *, models: Iterable[str] = DEFAULT_MODELS, api_key: str | None = None
    ) -> None:
        self._default_models = list(models)
        self._default_api_key = api_key
        self._models = list(self._default_models)
        self._api_key = api_key
        self._echo_status: int | None = None
        self._echo_value_limit: int | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[Script] = deque()
        self._requests: list[RecordedRequest] = []
        self._in_flight: list[Script] = []
        self._response_numbers = itertools.count(1)
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def start(self) -> Self:
        """Start serving in a background thread; return once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("The fake provider is already running.")
        self._stopping.clear()
        ready = threading.Event()
        failures: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failures), name="fake-llm-provider", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if failures:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("The fake provider could not start.") from failures[0]
        if not ready.is_set():
            raise RuntimeError("The fake provider did not start within 10 seconds.")
        return self

    def stop(self) -> None:
        """Stop serving; stalled and slow streams are cut so this returns promptly."""
        if self._thread is None or self._loop is None:
            return
        self._stopping.set()
        self.release_stalls()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event, failures: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            failures.append(exc)
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        # Requests carry attachments as base64 (a 25 MB file is ~34 MB): aiohttp's 1 MB default
        # would refuse them.
        app = web.Application(
            middlewares=[self._record_and_authorize], client_max_size=64 * 1024 * 1024
        )
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model_id:.+}", self._get_model)
        # A short shutdown timeout: handlers notice `_stopping` within one poll anyway.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    # -- scripting API ------------------------------------------------------------------------

    def enqueue(self, *scripts: Script) -> None:
        """Queue scripts; each chat request consumes the oldest one."""
        with self._lock:
            self._queue.extend(scripts)

    @property
    def pending_scripts(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def answers_in_progress(self) -> int:
        """How many chat requests are being answered now (a stalled stream counts)."""
        with self._lock:
            return len(self._in_flight)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received since the last reset, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [record for record in self.requests if record.path == "/v1/chat/completions"]

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `count` requests were received; for sync tests (it blocks the loop)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"Expected {count} requests, got {len(self._requests)}.")
            return list(self._requests)

    async def wait_for_requests_async(
        self, count: int, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until `count` requests were received without blocking the test's event loop."""
        deadline = time.monotonic() + timeout
        while len(records := self.requests) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Expected {count} requests, got {len(records)}.")
            await asyncio.sleep(_POLL_SECONDS)
        return records

    def release_stalls(self) -> None:
        """Release every stalled stream, and every queued script so it will not stall."""
        with self._lock:
            for script in (*self._in_flight, *self._queue):
                script.release()

    def set_models(self, models: Iterable[str]) -> None:
        with self._lock:
            self._models = list(models)

    def require_api_key(self, key: str | None) -> None:
        """Answer 401 to requests without `Authorization: Bearer <key>`; None accepts anything."""
        with self._lock:
            self._api_key = key

    def echo_headers_in_errors(self, status: int | None, *, value_limit: int | None = None) -> None:
        """Answer every request with `status` and an error quoting its headers (each value cut
        to `value_limit` characters when given); None stops."""
        with self._lock:
            self._echo_status = status
            self._echo_value_limit = value_limit

    def reset(self) -> None:
        """Forget scripts and requests, release stalls, restore the models and the key rule."""
        with self._lock:
            self._echo_status = None
            for script in (*self._in_flight, *self._queue):
                script.release()
            self._queue.clear()
            self._requests.clear()
            self._models = list(self._default_models)
            self._api_key = self._default_api_key

    # -- HTTP ---------------------------------------------------------------------------------

    @web.middleware
    async def _record_and_authorize(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed: Any = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=CIMultiDict(request.headers),
            body=body,
            json=parsed,
            received_at=time.time(),
        )
        with self._changed:
            self._requests.append(record)
            required_key = self._api_key
            echo_status, echo_value_limit = self._echo_status, self._echo_value_limit
            self._changed.notify_all()
        request[_RECORD] = record

        if echo_status is not None:
            echoed = headers_echo(record.headers, value_limit=echo_value_limit)
            message = f"The gateway failed. {echoed}"
            return _json_response(error_body(message, status=echo_status), status=echo_status)

        if required_key is not None and record.authorization != f"Bearer {required_key}":
            shown = (record.api_key or "")[:6]
            message = f"Incorrect API key provided: {shown}***. The fake provider wants another."
            return _json_response(error_body(message, status=401), status=401)
        return await handler(request)

    async def _list_models(self, request: web.Request) -> web.Response:
        with self._lock:
            models = list(self._models)
        return _json_response({"object": "list", "data": [self._model_object(m) for m in models]})

    async def _get_model(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model_id"]
        with self._lock:
            known = model_id in self._models
        if not known:
            message = f"The model `{model_id}` does not exist."
            return _json_response(error_body(message, status=404), status=404)
        return _json_response(self._model_object(model_id))

    @staticmethod
    def _model_object(model_id: str) -> JsonDict:
        return {"id": model_id, "object": "model", "created": _MODEL_CREATED, "owned_by": "fake"}

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        record = request[_RECORD]
        if not isinstance(record.json, dict):
            message = "The body must be a JSON object."
            return _json_response(error_body(message, status=400), status=400)

        with self._lock:
            script = self._queue.popleft() if self._queue else Script()
            self._in_flight.append(script)
        record.script = script
        if script.echo_headers:
            script.error_message = f"{script.error_message} {headers_echo(record.headers)}"
        try:
            answer = _Answer.resolve(
                script, record.json, response_id=f"chatcmpl-fake-{next(self._response_numbers):06d}"
            )
            await self._pause(script.initial_delay)
            if script.http_status is not None:
                return self._error_response(script)
            if record.json.get("stream"):
                return await self._stream(request, script, answer)
            return await self._complete(request, script, answer)
        finally:
            with self._lock:
                self._in_flight.remove(script)

    def _error_response(self, script: Script) -> web.Response:
        status = script.http_status or 500
        headers = {}
        if script.retry_after is not None:
            seconds = script.retry_after
            headers["Retry-After"] = str(int(seconds) if float(seconds).is_integer() else seconds)
        payload = error_body(
            script.error_message, status=status, type_=script.error_type, code=script.error_code
        )
        return _json_response(payload, status=status, headers=headers)

    async def _complete(
        self, request: web.Request, script: Script, answer: _Answer
    ) -> web.StreamResponse:
        await self._pause(script.delay * answer.token_count())
        if script.pause_after is not None:
            await self._pause(script.pause)
        if script.stall_after is not None:
            await self._stall(request, script)
        if script.fail_after is not None or self._stopping.is_set():
            return await self._drop_connection(request)
        if script.error_after is not None:
            payload = error_body(
                script.error_message, status=500, type_=script.error_type, code=script.error_code
            )
            return _json_response(payload)
        if script.malformed_after is not None:
            return web.Response(body=MALFORMED_LINE, content_type="application/json")
        return _json_response(answer.completion())

    async def _stream(
        self, request: web.Request, script: Script, answer: _Answer
    ) -> web.StreamResponse:
        options = request[_RECORD].json.get("stream_options") or {}
        events = answer.stream_events(
            include_usage=bool(options.get("include_usage")), send_usage=script.send_usage
        )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        def fires(after: int | None, position: int) -> bool:
            return after is not None and min(after, len(events)) == position

        try:
            for position in range(len(events) + 1):
                if fires(script.pause_after, position):
                    await self._pause(script.pause)
                if fires(script.stall_after, position):
                    await self._stall(request, script)
                if self._stopping.is_set() or fires(script.fail_after, position):
                    return await self._drop_connection(request, response)
                if fires(script.error_after, position):
                    payload = error_body(
                        script.error_message,
                        status=500,
                        type_=script.error_type,
                        code=script.error_code,
                    )
                    await response.write(_sse(payload))
                    break
                if fires(script.malformed_after, position):
                    await response.write(MALFORMED_LINE)
                    break
                if position == len(events):
                    await response.write(b"data: [DONE]\n\n")
                    break
                payload, carries_token = events[position]
                if carries_token:
                    await self._pause(script.delay)
                await response.write(_sse(payload))
            await response.write_eof()
        except ConnectionError:
            # The client went away mid-stream; there is nobody left to answer.
            pass
        return response

    async def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            await asyncio.sleep(min(left, 0.1))

    async def _stall(self, request: web.Request, script: Script) -> None:
        script._stalled.set()
        while not script._released.is_set() and not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(_POLL_SECONDS)

    async def _drop_connection(
        self, request: web.Request, response: web.StreamResponse | None = None
    ) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            # abort() discards what is still buffered in user space, so wait until the chunks
            # already sent reached the kernel, which delivers them before the FIN.
            deadline = time.monotonic() + 1.0
            while transport.get_write_buffer_size() and time.monotonic() < deadline:
                await asyncio.sleep(_POLL_SECONDS)
            transport.abort()
        return response if response is not None else web.Response(status=500)
