"""A user's provider or endpoint that echoes the request's headers never shows the key back.

The Test and List models actions of a key and of an endpoint, and a chat answered with each,
against a gateway that quotes the headers whole or cut short (every log line is checked by the
conftest too).
"""

from __future__ import annotations

import pytest
from django.test import Client

from byok.models import UserByokModel, UserCustomProvider, UserProviderKey
from chats.models import Chat, Message
from models_registry.models import Provider
from tests.byok.helpers import ALICE_ENDPOINT_KEY, ALICE_OPENAI_KEY
from tests.chats.helpers import wait_for_answer
from tests.fake_provider import FakeProvider, Script
from tests.secrets_support import assert_no_secret, logged_text

HTMX = {"HX-Request": "true"}
KEYS = [ALICE_OPENAI_KEY, ALICE_ENDPOINT_KEY]


@pytest.mark.parametrize("value_limit", [None, 30], ids=["whole", "cut"])
@pytest.mark.parametrize(
    ("method", "url", "key"),
    [
        ("post", "/settings/keys/provider/openai/test", ALICE_OPENAI_KEY),
        ("get", "/settings/keys/provider/openai/models", ALICE_OPENAI_KEY),
        ("post", "/settings/keys/endpoints/homelab/test", ALICE_ENDPOINT_KEY),
        ("get", "/settings/keys/endpoints/homelab/models", ALICE_ENDPOINT_KEY),
    ],
    ids=["key-test", "key-models", "endpoint-test", "endpoint-models"],
)
def test_a_key_or_endpoint_check_never_shows_the_key_a_gateway_echoes(
    alice_client: Client,
    platform_openai: Provider,
    alice_openai_key: UserProviderKey,
    alice_endpoint: UserCustomProvider,
    fake_llm: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    method: str,
    url: str,
    key: str,
    value_limit: int | None,
) -> None:
    fake_llm.echo_headers_in_errors(401, value_limit=value_limit)

    response = getattr(alice_client, method)(url, headers=HTMX)

    assert fake_llm.requests[0].api_key == key  # sent, and echoed back
    body = response.content.decode()
    assert_no_secret(body, KEYS, where="the page")
    assert_no_secret(logged_text(caplog), KEYS, where="the logs")
    assert "The provider refused the API key: The gateway failed." in body
    assert "Bearer [redacted]" in body


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("model_fixture", "key"),
    [("alice_openai_model", ALICE_OPENAI_KEY), ("alice_endpoint_model", ALICE_ENDPOINT_KEY)],
    ids=["own-key", "own-endpoint"],
)
def test_a_chat_on_alices_own_key_never_shows_it_when_the_gateway_echoes(
    alice_client: Client,
    platform_openai: Provider,
    fake_llm: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    model_fixture: str,
    key: str,
) -> None:
    model: UserByokModel = request.getfixturevalue(model_fixture)
    fake_llm.enqueue(Script(http_status=401, echo_headers=True))

    sent = alice_client.post("/c/send", {"text": "Hi", "model": model.model_id}, headers=HTMX)
    chat = Chat.objects.get()
    answer = wait_for_answer(chat.messages.get(role=Message.Role.ASSISTANT).id)
    page = alice_client.get(f"/c/{chat.id}/").content.decode()

    assert fake_llm.chat_requests[0].api_key == key
    assert answer.status == Message.Status.ERROR
    for where, text in {
        "the send's answer": sent.content.decode(),
        "the page": page,
        "Message.error": answer.error,
        "the logs": logged_text(caplog),
    }.items():
        assert_no_secret(text, KEYS, where=where)
    assert "Bearer [redacted]" in answer.error
