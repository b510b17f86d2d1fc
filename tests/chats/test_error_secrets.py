"""A gateway that echoes the request's headers in its errors never shows anyone the key.

Through the real path: a guest's send over HTTP, the answer generated on the generation loop,
its stream, the page, the stored `Message.error` and every log line (DEBUG, tracebacks too),
with the lean engine and with LiteLLM.
"""

from __future__ import annotations

import logging
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from chats.models import Chat, Message
from models_registry.calls import ENGINE_LITELLM, ENGINE_OPENAI_COMPATIBLE, KIND_ENGINE, Engine
from models_registry.models import Provider
from models_registry.services import provider_key_set
from tests.chats.helpers import wait_for_answer
from tests.fake_provider import FakeProvider, Script
from tests.secrets_support import assert_no_secret, logged_text

pytestmark = pytest.mark.django_db(transaction=True)

PLATFORM_KEY = "sk-platform-admin-3e9d1c7b5a2f8e6d4c0b"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def keyed_model(fake_model: str) -> str:
    """The fake model, served with a platform key the admin stored."""
    provider_key_set(provider=Provider.objects.get(slug="fake-provider"), api_key=PLATFORM_KEY)
    return fake_model


@pytest.fixture(params=[ENGINE_OPENAI_COMPATIBLE, ENGINE_LITELLM])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Serve custom endpoints with each engine in turn (LiteLLM speaks OpenAI's API too)."""
    monkeypatch.setitem(KIND_ENGINE, "custom", request.param)
    return request.param


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


async def _stream_of(client: Client, url: str) -> str:
    reader = AsyncClient()
    reader.cookies = client.cookies
    response = await reader.get(url)
    body = b""
    async for chunk in response.streaming_content:  # type: ignore[attr-defined]
        body += chunk
    return body.decode()


@pytest.mark.parametrize(
    "script",
    [
        Script(http_status=401, echo_headers=True),
        Script(http_status=500, echo_headers=True),
        Script(text=["Half ", "an ", "answer"], error_after=2, echo_headers=True),
    ],
    ids=["http-401", "http-500", "mid-stream"],
)
def test_a_guest_never_sees_the_platform_key_a_gateway_echoes(
    client: Client,
    keyed_model: str,
    fake_llm: FakeProvider,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    script: Script,
) -> None:
    fake_llm.enqueue(script)

    sent = client.post("/c/send", {"text": "Hello?", "model": keyed_model}, headers=HTMX)
    chat = Chat.objects.get()
    answer = wait_for_answer(chat.messages.get(role=Message.Role.ASSISTANT).id)
    stream = async_to_sync(_stream_of)(client, f"/c/{chat.id}/m/{answer.id}/stream?after=0")
    page = client.get(f"/c/{chat.id}/").content.decode()

    assert fake_llm.chat_requests[0].api_key == PLATFORM_KEY  # sent, and echoed back
    assert answer.status == Message.Status.ERROR
    for where, text in {
        "the send's answer": sent.content.decode(),
        "the stream": stream,
        "the page": page,
        "Message.error": answer.error,
        "the logs": logged_text(caplog),
    }.items():
        assert_no_secret(text, [PLATFORM_KEY], where=where)
    assert "Bearer [redacted]" in answer.error  # the provider's other words stay


def test_a_title_call_that_fails_logs_no_key(
    client: Client,
    keyed_model: str,
    fake_llm: FakeProvider,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_llm.enqueue(Script(text="An answer."), Script(http_status=500, echo_headers=True))

    client.post("/c/send", {"text": "Hello?", "model": keyed_model})
    fake_llm.wait_for_requests(2, timeout=15)
    _wait_for_log(caplog, "not generated")

    assert_no_secret(logged_text(caplog), [PLATFORM_KEY], where="the logs")
    assert "[redacted]" in logged_text(caplog)


def _wait_for_log(caplog: pytest.LogCaptureFixture, words: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(words in record.getMessage() for record in caplog.records):
        if time.monotonic() >= deadline:
            raise AssertionError(f"no log record says {words!r}")
        time.sleep(0.05)
