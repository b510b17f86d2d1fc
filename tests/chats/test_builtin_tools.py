"""The installed tools in a real answer: the model runs code and reads the chat's versions.

Nothing is stubbed but the provider: the loop offers the registry's real sources, run_code runs
in the sandbox's worker processes, read_chat_tree reads the database.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from django.test import Client

from accounts.models import User
from chats.models import Chat, Message
from chats.worker import TITLE_PROMPT
from models_registry.cache import registry_cache_clear
from models_registry.models import Model, Provider
from models_registry.services import provider_key_set
from tests.chats.helpers import send, wait_for_answer
from tests.fake_provider import FakeProvider, Script, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tool_model(fake_model: str) -> str:
    provider_key_set(provider=Provider.objects.get(slug="fake-provider"), api_key="sk-test")
    Model.objects.filter(id=fake_model).update(supports_tools=True)
    registry_cache_clear()
    return fake_model


def _answer(client: Client, model: str, text: str, chat: Chat | None = None) -> Message:
    send(client, text, model, chat_id=chat.id if chat else None)
    chat = chat or Chat.objects.get()
    answer = chat.messages.filter(role="assistant").order_by("-created_at").first()
    assert answer is not None
    return wait_for_answer(answer.id, timeout=60)


def _title_requested(fake: FakeProvider, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(
        r.messages and r.messages[0].get("content") == TITLE_PROMPT for r in fake.chat_requests
    ):
        assert time.monotonic() < deadline, "the chat's title was never asked for"
        time.sleep(0.02)


def _tool_message(fake: FakeProvider, call_id: str) -> dict[str, Any]:
    (message,) = [
        message
        for request in fake.chat_requests  # the title's request may come last
        for message in request.messages
        if message.get("role") == "tool" and message.get("tool_call_id") == call_id
    ]
    return orjson.loads(str(message["content"]))


def test_every_installed_tool_is_offered_to_a_model_that_calls_tools(
    alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    _answer(alice_client, tool_model, "Hello")
    offered = {tool["function"]["name"] for tool in fake_llm.chat_requests[0].json["tools"]}
    assert {"run_code", "read_chat_tree", "get_weather"} <= offered


def test_the_model_runs_code_in_the_sandbox_and_answers_from_its_result(
    alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    code = "console.log('squares'); [1, 2, 3].map((n) => n * n)"
    fake_llm.enqueue(
        Script(tool_calls=[ToolCall(name="run_code", arguments={"code": code}, id="call_js")]),
        Script(text="The squares are 1, 4 and 9."),
    )
    answer = _answer(alice_client, tool_model, "Square 1 to 3 with code.")

    result = _tool_message(fake_llm, "call_js")
    assert result["ok"] is True
    assert result["result"] == [1, 4, 9]
    assert "squares" in str(result["console"])
    kinds = [part["type"] for part in answer.parts]
    assert kinds == ["tool-call", "tool-result", "text"]
    assert answer.parts[0]["status"] == "complete"


def test_the_model_compares_the_versions_of_an_earlier_answer(
    alice: User, alice_client: Client, tool_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text="Use PostgreSQL."))
    first = _answer(alice_client, tool_model, "Which database?")
    chat = Chat.objects.get()
    _title_requested(fake_llm)  # the title's call would take the next script
    # A second version of the answer (regenerate), then the user asks to compare them.
    fake_llm.enqueue(Script(text="Use SQLite."))
    response = alice_client.post(
        f"/c/{chat.id}/m/{first.id}/regenerate", {"model": tool_model}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    second = chat.messages.filter(role="assistant").exclude(id=first.id).get()
    wait_for_answer(second.id, timeout=60)
    fake_llm.enqueue(
        Script(
            tool_calls=[
                ToolCall(
                    name="read_chat_tree", arguments={"action": "branch_points"}, id="call_tree"
                )
            ]
        ),
        Script(text="One said PostgreSQL, the other SQLite."),
    )
    _answer(alice_client, tool_model, "Compare your two answers.", chat=chat)

    tree = _tool_message(fake_llm, "call_tree")
    (point,) = tree["branch_points"]
    previews = [version["preview"] for version in point["versions"]]
    assert previews == ["Use PostgreSQL.", "Use SQLite."]
