"""No error text of a provider call carries the call's secrets, whichever engine and path.

Some OpenAI-compatible gateways echo the request's headers in their error bodies; the fake
provider does the same when told to (`echo_headers`).
"""

from __future__ import annotations

import logging

import pytest

from models_registry import calls
from models_registry.calls import (
    ENGINE_LITELLM,
    ENGINE_OPENAI_COMPATIBLE,
    CallTarget,
    Engine,
    LLMError,
    ProviderAuthError,
    ProviderServerError,
    StreamInterruptedError,
)
from models_registry.llm import complete, provider_ping, stream_collect, stream_completion
from tests.fake_provider import FakeProvider, Script
from tests.secrets_support import assert_no_secret, error_text, logged_text

ENGINES: list[Engine] = [ENGINE_OPENAI_COMPATIBLE, ENGINE_LITELLM]
KEY = "sk-platform-7f3a9c1e5b2d8f4a6c0e"
HEADER_SECRET = "gw-token-1b2c3d4e5f6a7b8c"
SECRETS = (KEY, HEADER_SECRET)
MESSAGES = [{"role": "user", "content": "Hello?"}]


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def _target(fake: FakeProvider) -> CallTarget:
    return CallTarget(
        model_id="fakelab:fake-model",
        engine=ENGINE_OPENAI_COMPATIBLE,
        provider_slug="fake",
        provider_kind="custom",
        provider_model="fake-model",
        api_base=fake.base_url,
        api_key=KEY,
        extra_params={"extra_headers": {"X-Gateway-Token": HEADER_SECRET}},
    )


def _assert_clean(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    assert_no_secret(error_text(error), SECRETS, where="the error")
    assert_no_secret(logged_text(caplog), SECRETS, where="the logs")


# -- both engines against a provider that echoes the request's headers ---------------------------


@pytest.mark.asyncio
@pytest.mark.usefixtures("llm_sessions")
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("script", "error_class"),
    [
        (Script(http_status=401, echo_headers=True), ProviderAuthError),
        (Script(http_status=500, echo_headers=True), ProviderServerError),
        (Script(text=["a ", "b ", "c"], error_after=2, echo_headers=True), StreamInterruptedError),
    ],
    ids=["http-401", "http-500", "mid-stream"],
)
async def test_a_stream_error_never_says_the_calls_secrets(
    fake_llm: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    engine: Engine,
    script: Script,
    error_class: type[LLMError],
) -> None:
    fake_llm.enqueue(script)

    with pytest.raises(error_class) as caught:
        await stream_collect(
            stream_completion(target=_target(fake_llm), messages=MESSAGES, engine=engine)
        )

    assert fake_llm.chat_requests[0].api_key == KEY  # the provider did get it, and echoed it
    logging.getLogger("tests").exception("the call failed", exc_info=caught.value)
    _assert_clean(caught.value, caplog)
    assert f"Bearer {calls.REDACTED}" in caught.value.message  # the rest of the words stay


@pytest.mark.asyncio
@pytest.mark.usefixtures("llm_sessions")
async def test_a_non_streaming_call_error_never_says_the_key(
    fake_llm: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.enqueue(Script(http_status=401, echo_headers=True))

    with pytest.raises(ProviderAuthError) as caught:
        await complete(target=_target(fake_llm), messages=MESSAGES)

    _assert_clean(caught.value, caplog)


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [401, 500])
async def test_a_provider_ping_error_never_says_the_key(
    fake_llm: FakeProvider, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    fake_llm.echo_headers_in_errors(status)

    with pytest.raises(LLMError) as caught:
        await provider_ping(kind="openai", api_base=fake_llm.base_url, api_key=KEY)

    assert fake_llm.requests[0].api_key == KEY
    _assert_clean(caught.value, caplog)
    assert f"Bearer {calls.REDACTED}" in caught.value.message
