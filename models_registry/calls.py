"""What a provider call needs and what it yields: plain types, no I/O, no heavy imports.

`resolver.resolve()` produces a `CallTarget`; `llm.py` consumes it and yields the deltas
below or raises the `LLMError`s below, whichever engine serves the call. Other apps (byok,
chats) import these types from here, never from `llm.py`'s internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import quote, quote_plus, urlsplit

from vero.errors import ErrorKind, VeroError

Engine = Literal["openai_compatible", "litellm"]
ENGINE_OPENAI_COMPATIBLE: Engine = "openai_compatible"
ENGINE_LITELLM: Engine = "litellm"

_MILLION = Decimal(1_000_000)


class CapabilityFields(Protocol):
    """A row that records a model's capabilities: a registry `Model`, a user's BYOK model."""

    @property
    def input_modalities(self) -> Sequence[str]: ...
    @property
    def supports_tools(self) -> bool: ...
    @property
    def supports_reasoning(self) -> bool: ...
    @property
    def context_window(self) -> int | None: ...
    @property
    def max_output_tokens(self) -> int | None: ...


@dataclass(frozen=True)
class Capabilities:
    """What a model accepts and can do; the UI offers and the server accepts only these."""

    input_modalities: tuple[str, ...] = ()
    supports_tools: bool = False
    supports_reasoning: bool = False
    context_window: int | None = None
    max_output_tokens: int | None = None

    @classmethod
    def of(cls, row: CapabilityFields) -> Capabilities:
        """Return the capabilities a model's row records."""
        return cls(
            input_modalities=tuple(row.input_modalities),
            supports_tools=row.supports_tools,
            supports_reasoning=row.supports_reasoning,
            context_window=row.context_window,
            max_output_tokens=row.max_output_tokens,
        )

    def accepts(self, modality: str) -> bool:
        return modality == "text" or modality in self.input_modalities


@dataclass(frozen=True)
class Usage:
    """Tokens one call used. Input includes cached input; output includes reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_input_tokens: int = 0


@dataclass(frozen=True)
class Pricing:
    """USD per million tokens on one provider; None where the provider's price is unknown."""

    input_per_million: Decimal | None = None
    output_per_million: Decimal | None = None
    reasoning_per_million: Decimal | None = None
    cached_input_per_million: Decimal | None = None

    def cost(self, usage: Usage) -> Decimal | None:
        """Return the USD cost of `usage`, or None when the input or output price is unknown."""
        if self.input_per_million is None or self.output_per_million is None:
            return None
        cached_price = self.cached_input_per_million
        if cached_price is None:
            cached_price = self.input_per_million
        reasoning_price = self.reasoning_per_million
        if reasoning_price is None:
            reasoning_price = self.output_per_million
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        total = (
            (usage.input_tokens - cached) * self.input_per_million
            + cached * cached_price
            + (usage.output_tokens - reasoning) * self.output_per_million
            + reasoning * reasoning_price
        )
        return total / _MILLION


# Which engine serves each provider kind, and LiteLLM's prefix for it.
KIND_ENGINE: Mapping[str, Engine] = {
    "openai": ENGINE_OPENAI_COMPATIBLE,
    "openrouter": ENGINE_OPENAI_COMPATIBLE,
    "xai": ENGINE_OPENAI_COMPATIBLE,
    "custom": ENGINE_OPENAI_COMPATIBLE,
    "google": ENGINE_LITELLM,
}
_LITELLM_PREFIX: Mapping[str, str] = {
    "openai": "openai",
    "openrouter": "openrouter",
    "xai": "xai",
    "custom": "openai",
    "google": "gemini",
}


class AddressRefusedError(OSError):
    """A connection that a target's `ConnectGuard` refused; its message says why."""


class ConnectGuard(Protocol):
    """Refuses unsafe addresses at connection time. Hashable: calls that share a guard share
    one HTTP session."""

    def resolver(self) -> Any:
        """An aiohttp resolver that raises AddressRefusedError for a refused address."""
        ...

    def __hash__(self) -> int: ...


@dataclass(frozen=True)
class CallTarget:
    """Everything one call to a model needs: where, with which key, as which model string.

    `connect_guard` checks every address the call connects to, when it connects (a user's
    endpoint: its name could resolve elsewhere than when it was checked).
    """

    model_id: str
    engine: Engine
    provider_slug: str
    provider_kind: str
    provider_model: str
    api_base: str | None
    api_key: str | None = field(repr=False)
    extra_params: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold headers
    capabilities: Capabilities = field(default_factory=Capabilities)
    pricing: Pricing = field(default_factory=Pricing)
    connect_guard: ConnectGuard | None = field(default=None, repr=False)

    @property
    def litellm_model(self) -> str:
        """The model string LiteLLM routes on, e.g. `gemini/gemini-3.8-flash`."""
        return f"{_LITELLM_PREFIX[self.provider_kind]}/{self.provider_model}"

    @property
    def is_openai_compatible(self) -> bool:
        return KIND_ENGINE.get(self.provider_kind) == ENGINE_OPENAI_COMPATIBLE

    @property
    def secrets(self) -> tuple[str, ...]:
        """What this call sends that no error text may repeat: the key, the values of extra
        headers an admin configured, a password in the base URL."""
        found = [self.api_key or ""]
        for name in ("extra_headers", "headers"):
            headers = self.extra_params.get(name)
            if isinstance(headers, Mapping):
                found += [str(value) for value in headers.values()]
        if self.api_base:
            found.append(urlsplit(self.api_base).password or "")
        return tuple(secret for secret in found if secret)


def parts_text(parts: Iterable[Mapping[str, Any]]) -> str:
    """Return the text of a message's parts: its text parts joined, nothing else (reasoning,
    files and tool calls are not text)."""
    return "".join(part.get("text", "") for part in parts if part.get("type") == "text")


@dataclass(frozen=True)
class RemoteModel:
    """A model a provider lists: its id and, when the provider gives one, a readable name."""

    id: str
    name: str


# -- deltas -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of tool call `index`: the first carries id and name, the rest arguments."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ReasoningStateDelta:
    """The provider's reasoning state that must go back to it with the next call of the same
    conversation (Anthropic's `thinking_blocks` with their signatures, through LiteLLM). A
    stream yields at most one, complete, just before its usage and finish."""

    state: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UsageDelta:
    usage: Usage


@dataclass(frozen=True, slots=True)
class FinishDelta:
    """The last delta of every complete stream."""

    reason: str


Delta = TextDelta | ReasoningDelta | ToolCallDelta | ReasoningStateDelta | UsageDelta | FinishDelta


# -- errors -------------------------------------------------------------------------------------


class LLMError(VeroError):
    """A provider call failed. `status` is the provider's HTTP status when it answered with one
    (not ours: `vero.errors.http_status` gives ours); `retryable` says whether trying the same
    call again may work."""

    code = "provider_error"
    kind = ErrorKind.UPSTREAM
    default_message = "The provider call failed."
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderAuthError(LLMError):
    code = "provider_auth"
    default_message = "The provider refused the API key."


class ProviderRateLimitError(LLMError):
    code = "provider_rate_limited"
    default_message = "The provider is rate limiting requests."
    retryable = True

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ProviderBadRequestError(LLMError):
    code = "provider_bad_request"
    default_message = "The provider rejected the request."


class ProviderServerError(LLMError):
    code = "provider_server_error"
    default_message = "The provider had an internal error."
    retryable = True


class ProviderUnreachableError(LLMError):
    code = "provider_unreachable"
    default_message = "The provider cannot be reached."
    retryable = True


class ProviderTimeoutError(LLMError):
    code = "provider_timeout"
    default_message = "The provider did not answer in time."
    retryable = True


class StreamInterruptedError(LLMError):
    """The stream started and then broke: dropped, an error event, or data we cannot read."""

    code = "stream_interrupted"
    default_message = "The provider's answer broke off."
    retryable = True


# -- secrets in error texts ---------------------------------------------------------------------

REDACTED = "[redacted]"
# Shorter secrets are not keys (and would blank ordinary words); a run of 8 characters shared
# with a key is a piece of it (a gateway may cut or mask the key it echoes); at the very start
# or end of a text, where a message may have been cut, 4 are enough.
_SECRET_MIN = 4
_PIECE_MIN = 8


def _secret_forms(secrets: Iterable[str | None]) -> set[str]:
    """Each secret as sent and as it reads in a URL or a form body."""
    forms: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= _SECRET_MIN:
            forms.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
    return forms


def _mark_pieces(text: str, form: str, hidden: list[bool]) -> None:
    shortest = min(_PIECE_MIN, len(form))
    start = 0
    while start <= len(text) - shortest:
        end = start + shortest
        if text[start:end] in form:
            while end < len(text) and text[start : end + 1] in form:
                end += 1
            hidden[start:end] = [True] * (end - start)
            start = end
        else:
            start += 1
    for size in range(min(len(form), len(text)), _SECRET_MIN - 1, -1):
        if text.endswith(form[:size]):
            hidden[len(text) - size :] = [True] * size
            break
    for size in range(min(len(form), len(text)), _SECRET_MIN - 1, -1):
        if text.startswith(form[-size:]):
            hidden[:size] = [True] * size
            break


def text_redact(text: str, *, secrets: Iterable[str | None]) -> str:
    """Return `text` with every secret, whole or in pieces, as sent or URL-encoded, replaced.

    The one place where secrets leave error texts: every message a provider call shows, stores
    or logs passes here first (through `error_redact`).
    """
    hidden = [False] * len(text)
    for form in _secret_forms(secrets):
        _mark_pieces(text, form, hidden)
    if not any(hidden):
        return text
    out: list[str] = []
    for position, character in enumerate(text):
        if not hidden[position]:
            out.append(character)
        elif position == 0 or not hidden[position - 1]:
            out.append(REDACTED)
    return "".join(out)


def _says_secret(error: BaseException, secrets: tuple[str | None, ...]) -> bool:
    said = f"{error!s} {error!r}"
    return text_redact(said, secrets=secrets) != said


def _chain(error: BaseException) -> Iterator[BaseException]:
    """Every error `error` came from, as a logged traceback could print them."""
    seen: set[int] = {id(error)}
    pending = [error.__cause__, error.__context__]
    while pending and len(seen) < 50:
        link = pending.pop()
        if link is not None and id(link) not in seen:
            seen.add(id(link))
            yield link
            pending += [link.__cause__, link.__context__]


def error_redact(error: BaseException, *, secrets: Iterable[str | None]) -> BaseException:
    """Return `error` with no secret left in what it says, fit to show, store and log.

    An `LLMError`'s message is redacted in place. The chain it came from (a library's error,
    which may quote the provider's whole answer) is dropped when any link says a secret: a
    logged traceback prints every link. Any other error that says a secret becomes an
    `LLMError` with the redacted text.
    """
    secrets = tuple(secrets)
    if not _secret_forms(secrets):
        return error
    if isinstance(error, LLMError):
        error.message = text_redact(error.message, secrets=secrets)
        error.args = (error.message,)
    elif _says_secret(error, secrets):
        replaced = LLMError(f"The provider call failed: {text_redact(str(error), secrets=secrets)}")
        replaced.__cause__ = error  # dropped just below, since it says the secret
        error = replaced
    if any(_says_secret(link, secrets) for link in _chain(error)):
        error.__cause__ = error.__context__ = None
        error.__suppress_context__ = True
    return error


@contextmanager
def errors_redacted(*, secrets: Iterable[str | None]) -> Iterator[None]:
    """Let no error leave the block saying one of `secrets` (see `error_redact`)."""
    secrets = tuple(secrets)
    try:
        yield
    except Exception as error:
        clean = error_redact(error, secrets=secrets)
        if clean is error:
            raise
        raise clean from None
