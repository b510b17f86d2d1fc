"""The one door to model providers, and the only module that imports LiteLLM (lazily).

Two engines behind one interface, chosen by provider kind:

- a lean streaming client for OpenAI-compatible providers (OpenAI, OpenRouter, xAI, custom
  endpoints such as Ollama or vLLM): aiohttp, a small SSE parser and orjson;
- LiteLLM for every other provider (Gemini's native API, …), for non-streaming calls and for
  its model map.

Both yield the same typed deltas (`calls.Delta`) and raise the same typed errors
(`calls.LLMError`), whose texts never carry the call's secrets (`calls.error_redact`: some
gateways echo the request's headers in their error bodies). A complete stream ends with at
most one `ReasoningStateDelta` (LiteLLM's `thinking_blocks`, whole), at most one `UsageDelta`
and then exactly one `FinishDelta`; a stream that cannot end that way raises. Messages go to
the provider as given: an assistant message's `tool_calls` and the `tool` messages pass
unchanged on the lean engine. Keys travel with each call, never through process-wide state.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from models_registry.calls import (
    ENGINE_LITELLM,
    ENGINE_OPENAI_COMPATIBLE,
    AddressRefusedError,
    CallTarget,
    ConnectGuard,
    Delta,
    Engine,
    FinishDelta,
    LLMError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderUnreachableError,
    ReasoningDelta,
    ReasoningStateDelta,
    RemoteModel,
    StreamInterruptedError,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageDelta,
    errors_redacted,
)

logger = logging.getLogger(__name__)

Message = Mapping[str, Any]
GEMINI_API_BASE = "https://generativelanguage.googleapis.com"
MAX_LISTED_MODELS = 1000
_ERROR_TEXT_LIMIT = 300


# -- LiteLLM, imported on first use -------------------------------------------------------------

_litellm_module: ModuleType | None = None


def _litellm() -> ModuleType:
    """Import and configure LiteLLM once: no network at import, no banners, lenient params."""
    global _litellm_module
    if _litellm_module is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.drop_params = True
        litellm.suppress_debug_info = True
        litellm.telemetry = False
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(logging.WARNING)
        _litellm_module = litellm
    return _litellm_module


async def _litellm_loaded() -> ModuleType:
    """LiteLLM, imported in a worker thread if it is not yet: on a server's loop the import
    (3-5 s) would otherwise stall every request and stream of the process."""
    return _litellm_module if _litellm_module is not None else await asyncio.to_thread(_litellm)


def llm_preload() -> None:
    """Import LiteLLM now (3-5 s of CPU), so the first call that needs it does not wait."""
    _litellm()


def litellm_model_map() -> dict[str, Any]:
    """Return LiteLLM's bundled model map, read from its JSON file without importing LiteLLM."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        raise LLMError("LiteLLM is not installed, so its model map is unavailable.")
    path = Path(spec.origin).parent / "model_prices_and_context_window_backup.json"
    data: dict[str, Any] = json.loads(path.read_text())
    data.pop("sample_spec", None)
    return data


# -- the shared HTTP session --------------------------------------------------------------------

# One session (and connection pool) per event loop and connect guard: aiohttp sessions are
# bound to their loop, and a guarded session resolves every new connection's host itself.
_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[ConnectGuard | None, aiohttp.ClientSession]
] = weakref.WeakKeyDictionary()


def _session(guard: ConnectGuard | None = None) -> aiohttp.ClientSession:
    sessions = _sessions.setdefault(asyncio.get_running_loop(), {})
    session = sessions.get(guard)
    if session is None or session.closed:
        if guard is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        else:  # no DNS cache: each connection checks the addresses it really gets
            connector = aiohttp.TCPConnector(
                limit=0, resolver=guard.resolver(), use_dns_cache=False
            )
        session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        sessions[guard] = session
    return session


async def llm_close() -> None:
    """Close this event loop's HTTP sessions (at shutdown, or at the end of a test)."""
    for session in (_sessions.pop(asyncio.get_running_loop(), None) or {}).values():
        await session.close()


# -- errors -------------------------------------------------------------------------------------


def provider_error_detail(body: bytes) -> str:
    """Return what a provider's error body says (its `error.message`), cut to a readable length."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace").strip()[:_ERROR_TEXT_LIMIT]
    if isinstance(payload, list) and payload:  # Gemini wraps errors in a list
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "")[:_ERROR_TEXT_LIMIT]
    if isinstance(error, str):
        return error[:_ERROR_TEXT_LIMIT]
    return ""


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _redirect_refused() -> LLMError:
    return ProviderBadRequestError(
        "The provider redirected the request elsewhere; redirects are not followed."
    )


def http_error(status: int, detail: str, *, retry_after: float | None = None) -> LLMError:
    """Return the typed error for an HTTP error status from a provider."""
    suffix = f": {detail}" if detail else "."
    if status in (401, 403):
        return ProviderAuthError(f"The provider refused the API key{suffix}", status=status)
    if status == 429:
        return ProviderRateLimitError(
            f"The provider is rate limiting requests{suffix}",
            status=status,
            retry_after=retry_after,
        )
    if status >= 500:
        return ProviderServerError(f"The provider had an internal error{suffix}", status=status)
    if 400 <= status < 500:
        return ProviderBadRequestError(f"The provider rejected the request{suffix}", status=status)
    return LLMError(f"The provider answered with status {status}{suffix}", status=status)


# -- the lean engine ----------------------------------------------------------------------------


class SSEParser:
    """Split a Server-Sent Events byte stream into the `data` payload of each event."""

    __slots__ = ("_data", "_partial")

    def __init__(self) -> None:
        self._partial = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """Take the next bytes; return the payloads of the events they complete."""
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # Comments (": OPENROUTER PROCESSING"), event:, id: and retry: lines carry nothing.
        return events


def _usage_from(payload: Mapping[str, Any]) -> Usage:
    completion_details = payload.get("completion_tokens_details") or {}
    prompt_details = payload.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(payload.get("prompt_tokens") or 0),
        output_tokens=int(payload.get("completion_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
    )


def _lean_body(
    *, target: CallTarget, messages: Sequence[Message], options: Mapping[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        **target.extra_params,
        "model": target.provider_model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if options.get("tools"):
        body["tools"] = options["tools"]
        if options.get("tool_choice"):
            body["tool_choice"] = options["tool_choice"]
    if options.get("max_tokens"):
        # OpenAI's reasoning models refuse max_tokens; the others may not know the new name.
        name = "max_completion_tokens" if target.provider_kind == "openai" else "max_tokens"
        body[name] = options["max_tokens"]
    if options.get("temperature") is not None:
        body["temperature"] = options["temperature"]
    if options.get("reasoning_effort"):
        if target.provider_kind == "openrouter":
            body["reasoning"] = {"effort": options["reasoning_effort"]}
        else:
            body["reasoning_effort"] = options["reasoning_effort"]
    return body


@dataclass
class _LeanStream:
    """What a lean stream has said so far, for deciding how it ended."""

    started: bool = False  # a delta was yielded: a broken connection now interrupts an answer
    finish_reason: str | None = None
    usage: Usage | None = None
    done: bool = False  # `[DONE]` came


def _lean_headers(target: CallTarget) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    return headers


async def _lean_refuse_failed(response: aiohttp.ClientResponse) -> None:
    """Raise the typed error for a redirect or an error status; return for a stream."""
    if 300 <= response.status < 400:
        raise _redirect_refused()
    if response.status >= 400:
        detail = provider_error_detail(await response.read())
        raise http_error(
            response.status,
            detail,
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )


def _lean_choice_deltas(choice: Mapping[str, Any], stream: _LeanStream) -> list[Delta]:
    """The deltas of the first choice of one chunk (other choices are not asked for)."""
    if choice.get("index", 0) != 0:
        return []
    delta = choice.get("delta") or {}
    deltas: list[Delta] = []
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if reasoning:
        deltas.append(ReasoningDelta(reasoning))
    if delta.get("content"):
        deltas.append(TextDelta(delta["content"]))
    for call in delta.get("tool_calls") or ():
        function = call.get("function") or {}
        deltas.append(
            ToolCallDelta(
                index=int(call.get("index") or 0),
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    if choice.get("finish_reason"):
        stream.finish_reason = choice["finish_reason"]
    stream.started = stream.started or bool(deltas)
    return deltas


def _lean_event_deltas(data: bytes, stream: _LeanStream) -> list[Delta]:
    """Read one event's data: its deltas; `[DONE]`, usage and the finish go to `stream`."""
    if data == b"[DONE]":
        stream.done = True
        return []
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise StreamInterruptedError("The provider sent data that could not be read.") from error
    if payload.get("error"):
        detail = provider_error_detail(data)
        raise StreamInterruptedError(
            f"The provider failed while answering: {detail}"
            if detail
            else "The provider failed while answering."
        )
    deltas = [
        delta
        for choice in payload.get("choices") or ()
        for delta in _lean_choice_deltas(choice, stream)
    ]
    if payload.get("usage"):
        stream.usage = _usage_from(payload["usage"])
    return deltas


def _lean_transport_error(error: Exception, *, started: bool, idle_timeout: float) -> LLMError:
    """The typed error for a connection that failed, timed out or broke off."""
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderTimeoutError(f"The provider sent nothing for {idle_timeout:g} seconds.")
    if isinstance(error, aiohttp.ClientPayloadError):
        return StreamInterruptedError("The provider's answer broke off.")
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, AddressRefusedError):
            return ProviderUnreachableError(str(error.os_error))
        return ProviderUnreachableError(f"The provider cannot be reached: {error}")
    if started:
        return StreamInterruptedError("The connection to the provider broke.")
    return ProviderUnreachableError(f"The provider cannot be reached: {error}")


async def _stream_lean(
    *,
    target: CallTarget,
    messages: Sequence[Message],
    options: Mapping[str, Any],
    idle_timeout: float,
) -> AsyncGenerator[Delta, None]:
    if not target.api_base:
        raise ProviderUnreachableError("The provider has no base URL configured.")
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=settings.LLM_CONNECT_TIMEOUT_SECONDS, sock_read=idle_timeout
    )
    body = orjson.dumps(_lean_body(target=target, messages=messages, options=options))
    stream = _LeanStream()
    try:
        async with _session(target.connect_guard).post(
            f"{target.api_base.rstrip('/')}/chat/completions",
            data=body,
            headers=_lean_headers(target),
            timeout=timeout,
            # A redirect could point a user's endpoint at an internal address; never follow.
            allow_redirects=False,
        ) as response:
            await _lean_refuse_failed(response)
            parser = SSEParser()
            async for chunk in response.content.iter_any():
                for data in parser.feed(chunk):
                    for delta in _lean_event_deltas(data, stream):
                        yield delta
                    if stream.done:
                        break
                if stream.done:
                    break
    except LLMError:
        raise
    except (TimeoutError, aiohttp.ClientError) as error:
        raise _lean_transport_error(
            error, started=stream.started, idle_timeout=idle_timeout
        ) from error
    if stream.finish_reason is None and not stream.done:
        raise StreamInterruptedError("The provider's answer broke off.")
    if stream.usage is not None:
        yield UsageDelta(stream.usage)
    yield FinishDelta(stream.finish_reason or "stop")


# -- the LiteLLM engine -------------------------------------------------------------------------


def _cause_names(error: BaseException) -> set[str]:
    names: set[str] = set()
    current: BaseException | None = error
    while current is not None and len(names) < 20:
        names.update(cls.__name__ for cls in type(current).__mro__)
        current = current.__cause__ or current.__context__
    return names


def _litellm_error(error: Exception, *, started: bool) -> LLMError:
    litellm = _litellm()
    causes = _cause_names(error)
    if isinstance(error, litellm.Timeout) or causes & {"APITimeoutError", "TimeoutException"}:
        return ProviderTimeoutError("The provider took too long to answer.")
    detail = str(getattr(error, "message", "") or error)
    # "litellm.AuthenticationError: AuthenticationError: OpenAIException - <the provider's words>"
    _, separator, provider_words = detail.partition("Exception - ")
    detail = (provider_words if separator else detail).strip()[:_ERROR_TEXT_LIMIT]
    if started:
        return StreamInterruptedError(f"The provider's answer broke off: {detail}")
    # LiteLLM reports a refused connection as an internal error with status 500.
    if isinstance(error, litellm.APIConnectionError) or "ConnectError" in causes:
        return ProviderUnreachableError(f"The provider cannot be reached: {detail}")
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and status >= 400:
        retry_after = None
        response = getattr(error, "response", None)
        if response is not None:
            retry_after = _retry_after(getattr(response, "headers", {}).get("retry-after"))
        return http_error(status, detail, retry_after=retry_after)
    return LLMError(f"The provider call failed: {detail}")


def _litellm_kwargs(
    *, target: CallTarget, messages: Sequence[Message], options: Mapping[str, Any]
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        **target.extra_params,
        "model": target.litellm_model,
        "messages": list(messages),
        "api_key": target.api_key,
        "drop_params": True,
        # Retrying is the caller's decision (errors say whether they are retryable).
        "max_retries": 0,
        "num_retries": 0,
    }
    if target.api_base:
        kwargs["api_base"] = target.api_base
    for name in ("tools", "tool_choice", "max_tokens", "temperature", "reasoning_effort"):
        if options.get(name) is not None:
            kwargs[name] = options[name]
    return kwargs


def _tool_call_deltas(tool_calls: Sequence[Any] | None) -> list[ToolCallDelta]:
    deltas = []
    for position, call in enumerate(tool_calls or ()):
        function = getattr(call, "function", None)
        index = getattr(call, "index", None)
        deltas.append(
            ToolCallDelta(
                index=position if index is None else int(index),
                id=getattr(call, "id", None),
                name=getattr(function, "name", None),
                arguments=getattr(function, "arguments", None) or "",
            )
        )
    return deltas


def _thinking_blocks_add(blocks: list[dict[str, Any]], pieces: Sequence[Any] | None) -> None:
    """Grow the reasoning blocks a stream carries (Anthropic's, through LiteLLM) by one chunk's
    pieces: thinking text streams in pieces and its signature comes last; a redacted block
    comes whole. The blocks must go back exactly, signatures included, or the provider refuses
    the next step."""
    for piece in pieces or ():
        found = piece if isinstance(piece, Mapping) else getattr(piece, "__dict__", {})
        kind = found.get("type") or "thinking"
        if kind != "thinking":
            blocks.append(dict(found))
            continue
        last = blocks[-1] if blocks else None
        if last is None or last.get("type") != "thinking" or last.get("signature"):
            last = {"type": "thinking", "thinking": ""}
            blocks.append(last)
        last["thinking"] += found.get("thinking") or ""
        if found.get("signature"):
            last["signature"] = found["signature"]


def _reported_usage(usage: Any) -> Usage | None:
    """Return LiteLLM's usage object as ours; None when the provider reported none."""
    if usage is None or type(usage).__name__ == "UnreportedUsage":
        return None
    if not getattr(usage, "total_tokens", 0):
        return None
    return _usage_from_litellm(usage)


def _stream_usage(response: Any, chunk: Any) -> Usage | None:
    """Find the usage the provider reported in LiteLLM's stream, never an estimate.

    Without LiteLLM's `stream_options` argument (see _stream_litellm) the usage-only chunk is
    kept out of the stream and recorded in the wrapper's `chunks` (LiteLLM 1.110.2, pinned);
    the last chunk's hidden params may then hold a tokenizer estimate, which we ignore.
    """
    found = _reported_usage(getattr(chunk, "usage", None))
    if found is not None:
        return found
    for recorded in reversed(getattr(response, "chunks", None) or ()):
        found = _reported_usage(getattr(recorded, "usage", None))
        if found is not None:
            return found
    return None


def _usage_from_litellm(usage: Any) -> Usage:
    completion_details = getattr(usage, "completion_tokens_details", None)
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        reasoning_tokens=int(getattr(completion_details, "reasoning_tokens", 0) or 0),
        cached_input_tokens=int(getattr(prompt_details, "cached_tokens", 0) or 0),
    )


async def _stream_litellm(
    *,
    target: CallTarget,
    messages: Sequence[Message],
    options: Mapping[str, Any],
    idle_timeout: float,
) -> AsyncGenerator[Delta, None]:
    litellm = await _litellm_loaded()
    kwargs = _litellm_kwargs(target=target, messages=messages, options=options)
    kwargs.update(stream=True, timeout=idle_timeout)
    if target.is_openai_compatible:
        # Through extra_body, not stream_options: LiteLLM rebuilds the whole response twice
        # for the latter, and without either it may swap the provider's usage for an estimate.
        kwargs["extra_body"] = {"stream_options": {"include_usage": True}}
    started = False
    finish_reason: str | None = None
    usage: Usage | None = None
    thinking_blocks: list[dict[str, Any]] = []
    try:
        response = await litellm.acompletion(**kwargs)
        chunk: Any = None
        async for chunk in response:
            for choice in getattr(chunk, "choices", None) or ():
                if getattr(choice, "index", 0) not in (0, None):
                    continue
                delta = choice.delta
                reasoning = getattr(delta, "reasoning_content", None)
                if reasoning:
                    started = True
                    yield ReasoningDelta(reasoning)
                if delta.content:
                    started = True
                    yield TextDelta(delta.content)
                for call_delta in _tool_call_deltas(getattr(delta, "tool_calls", None)):
                    started = True
                    yield call_delta
                _thinking_blocks_add(thinking_blocks, getattr(delta, "thinking_blocks", None))
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
        usage = _stream_usage(response, chunk)
    except LLMError:
        raise
    except Exception as error:
        raise _litellm_error(error, started=started) from error
    if finish_reason is None:
        raise StreamInterruptedError("The provider's answer broke off.")
    if thinking_blocks:
        yield ReasoningStateDelta({"thinking_blocks": thinking_blocks})
    if usage is not None:
        yield UsageDelta(usage)
    yield FinishDelta(finish_reason)


# -- the interface ------------------------------------------------------------------------------


def stream_completion(
    *,
    target: CallTarget,
    messages: Sequence[Message],
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: str | Mapping[str, Any] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    reasoning_effort: str | None = None,
    engine: Engine | None = None,
    idle_timeout: float | None = None,
) -> AsyncIterator[Delta]:
    """Stream a chat completion as typed deltas; raise `LLMError`s.

    `engine` forces one (the LiteLLM engine can serve OpenAI-compatible targets too);
    `idle_timeout` bounds the silence between two chunks.
    """
    options = {
        "tools": list(tools) if tools else None,
        "tool_choice": tool_choice,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "reasoning_effort": reasoning_effort,
    }
    chosen = engine or target.engine
    if chosen == ENGINE_OPENAI_COMPATIBLE and not target.is_openai_compatible:
        raise LLMError(f"The {target.provider_kind} provider is not OpenAI-compatible.")
    streamer = _stream_lean if chosen == ENGINE_OPENAI_COMPATIBLE else _stream_litellm
    stream = streamer(
        target=target,
        messages=messages,
        options=options,
        idle_timeout=idle_timeout or settings.LLM_IDLE_TIMEOUT_SECONDS,
    )
    return _redacted(stream, secrets=target.secrets)


async def _redacted(
    stream: AsyncGenerator[Delta, None], *, secrets: tuple[str, ...]
) -> AsyncGenerator[Delta, None]:
    """Pass the deltas on; raise the stream's errors without the call's secrets."""
    async with contextlib.aclosing(stream):
        with errors_redacted(secrets=secrets):
            async for delta in stream:
                yield delta


@dataclass(frozen=True)
class ToolCall:
    index: int
    id: str
    name: str
    arguments: str


@dataclass
class StreamAccumulator:
    """Fold deltas into the answer so far: text, reasoning, tool calls by index, usage, finish."""

    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    _calls: dict[int, dict[str, str]] = field(default_factory=dict)

    def add(self, delta: Delta) -> None:
        match delta:
            case TextDelta(text=text):
                self.text += text
            case ReasoningDelta(text=text):
                self.reasoning += text
            case ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments):
                call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                call["id"] = call_id or call["id"]
                call["name"] = name or call["name"]
                call["arguments"] += arguments
            case UsageDelta(usage=usage):
                self.usage = usage
            case FinishDelta(reason=reason):
                self.finish_reason = reason

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(index=index, id=call["id"], name=call["name"], arguments=call["arguments"])
            for index, call in sorted(self._calls.items())
        ]


async def stream_collect(stream: AsyncIterator[Delta]) -> StreamAccumulator:
    """Consume a stream and return everything it said."""
    result = StreamAccumulator()
    async for delta in stream:
        result.add(delta)
    return result


@dataclass(frozen=True)
class Completion:
    text: str
    reasoning: str
    tool_calls: list[ToolCall]
    usage: Usage | None
    finish_reason: str


async def complete(
    *,
    target: CallTarget,
    messages: Sequence[Message],
    max_tokens: int | None = None,
    temperature: float | None = None,
    reasoning_effort: str | None = None,
    timeout: float | None = None,
) -> Completion:
    """Make a non-streaming chat completion (titles and other small jobs) through LiteLLM."""
    litellm = await _litellm_loaded()
    options = {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "reasoning_effort": reasoning_effort,
    }
    kwargs = _litellm_kwargs(target=target, messages=messages, options=options)
    kwargs["timeout"] = timeout or settings.LLM_IDLE_TIMEOUT_SECONDS
    with errors_redacted(secrets=target.secrets):
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as error:
            raise _litellm_error(error, started=False) from error
    choices = getattr(response, "choices", None) or []
    if not choices:
        raise LLMError("The provider answered without a message.")
    message = choices[0].message
    tool_calls = [
        ToolCall(index=call.index, id=call.id or "", name=call.name or "", arguments=call.arguments)
        for call in _tool_call_deltas(getattr(message, "tool_calls", None))
    ]
    usage = getattr(response, "usage", None)
    return Completion(
        text=message.content or "",
        reasoning=getattr(message, "reasoning_content", None) or "",
        tool_calls=tool_calls,
        usage=_usage_from_litellm(usage) if usage is not None else None,
        finish_reason=choices[0].finish_reason or "stop",
    )


def provider_models_request(
    *, kind: str, api_base: str | None, api_key: str | None
) -> tuple[str, dict[str, str]]:
    """Return the URL and headers that list a provider's models (GET)."""
    if kind == "google":
        url = f"{(api_base or GEMINI_API_BASE).rstrip('/')}/v1beta/models?pageSize=1000"
        return url, ({"x-goog-api-key": api_key} if api_key else {})
    if not api_base:
        raise ProviderUnreachableError("The provider has no base URL configured.")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return f"{api_base.rstrip('/')}/models", headers


def provider_models_parse(raw: bytes) -> list[RemoteModel]:
    """Read a provider's model list (OpenAI-compatible or Gemini's), sorted by id."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ProviderBadRequestError("The provider's model list could not be read.") from error
    if not isinstance(payload, dict):
        return []
    items = payload.get("data") or payload.get("models") or []
    found: dict[str, RemoteModel] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        # OpenAI-compatible lists carry `id`; Gemini's carries `name` ("models/gemini-…").
        model_id = str(item.get("id") or item.get("name") or "").removeprefix("models/")
        if model_id and model_id not in found:
            name = str(item.get("name") or item.get("displayName") or model_id)
            found[model_id] = RemoteModel(id=model_id, name=name.removeprefix("models/"))
        if len(found) >= MAX_LISTED_MODELS:
            break
    return sorted(found.values(), key=lambda model: model.id.lower())


async def provider_ping(*, kind: str, api_base: str | None, api_key: str | None) -> str:
    """Check a provider's address and key by listing its models; return a short report.

    Raises the same typed errors as a completion would.
    """
    url, headers = provider_models_request(kind=kind, api_base=api_base, api_key=api_key)
    timeout = aiohttp.ClientTimeout(total=settings.LLM_CONNECT_TIMEOUT_SECONDS)
    with errors_redacted(secrets=(api_key,)):
        try:
            # Its own short-lived session: the admin calls this from a fresh event loop.
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers, allow_redirects=False) as response,
            ):
                if 300 <= response.status < 400:
                    raise _redirect_refused()
                raw = await response.read()
                if response.status >= 400:
                    raise http_error(response.status, provider_error_detail(raw))
        except LLMError:
            raise
        except TimeoutError as error:
            raise ProviderTimeoutError("The provider did not answer in time.") from error
        except aiohttp.ClientError as error:
            raise ProviderUnreachableError(f"The provider cannot be reached: {error}") from error
    count = len(provider_models_parse(raw))
    return f"Connected: the provider lists {count} model{'s' if count != 1 else ''}."


__all__ = [
    "ENGINE_LITELLM",
    "ENGINE_OPENAI_COMPATIBLE",
    "Completion",
    "SSEParser",
    "StreamAccumulator",
    "ToolCall",
    "complete",
    "litellm_model_map",
    "llm_close",
    "llm_preload",
    "provider_error_detail",
    "provider_models_parse",
    "provider_models_request",
    "provider_ping",
    "stream_collect",
    "stream_completion",
]
