"""The tool registry: what is offered, and that no call ever raises into the loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from tools.registry import (
    TOOL_GROUPS,
    StaticSource,
    Tool,
    ToolContext,
    ToolError,
    ToolOutcome,
    tool_execute,
    tool_groups_allowed,
    tool_source_register,
    tool_source_unregister,
    tools_offered,
)

CONTEXT = ToolContext(user_id=uuid.uuid4(), chat_id=uuid.uuid4(), message_id=uuid.uuid4())
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0}, "word": {"type": "string"}},
    "required": ["n"],
    "additionalProperties": False,
}


def double(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    if arguments["n"] == 13:
        raise ToolError("Thirteen is unlucky.", type_="refused")
    if arguments["n"] == 666:
        raise RuntimeError("a bug with a secret sk-live-123 inside")
    return {"doubled": arguments["n"] * 2, "user": str(context.user_id)}


async def slow(context: ToolContext, arguments: dict[str, Any]) -> str:
    await asyncio.sleep(5)
    return "late"


DOUBLE = Tool(
    name="double", description="Doubles n.", parameters=SCHEMA, group="code", function=double
)
SLOW = Tool(
    name="slow", description="Sleeps.", parameters={"type": "object"}, group="weather",
    function=slow, timeout_seconds=0.2,
)  # fmt: skip


@pytest.fixture
def test_source() -> Iterator[None]:
    tool_source_register(StaticSource(name="test", static_tools=(DOUBLE, SLOW)))
    yield
    tool_source_unregister("test")


def run(**kwargs: Any) -> ToolOutcome:
    return asyncio.run(tool_execute(tools=[DOUBLE, SLOW], context=CONTEXT, **kwargs))


@pytest.mark.django_db(transaction=True)
def test_a_valid_call_runs_a_sync_tool_off_the_loop_and_returns_its_result() -> None:
    outcome = run(name="double", arguments='{"n": 21}')
    assert outcome == ToolOutcome(result={"doubled": 42, "user": str(CONTEXT.user_id)})
    assert outcome.content() == f'{{"doubled":42,"user":"{CONTEXT.user_id}"}}'


@pytest.mark.parametrize(
    ("name", "arguments", "error_type", "words"),
    [
        ("nope", "{}", "unknown_tool", "no tool named 'nope'"),
        ("double", "{not json", "invalid_arguments", "not valid JSON"),
        ("double", "[1, 2]", "invalid_arguments", "must be a JSON object"),
        ("double", '{"n": -1}', "invalid_arguments", "n: -1 is less than the minimum of 0"),
        ("double", '{"word": "x"}', "invalid_arguments", "'n' is a required property"),
        ("double", '{"n": 1, "extra": 2}', "invalid_arguments", "Additional properties"),
        ("double", '{"n": 13}', "refused", "Thirteen is unlucky."),
        ("slow", "{}", "timeout", "took longer than 0.2 seconds"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_bad_call_comes_back_as_a_structured_error(
    name: str, arguments: str, error_type: str, words: str
) -> None:
    outcome = run(name=name, arguments=arguments)
    assert outcome.is_error
    assert outcome.result["error"]["type"] == error_type
    assert words in outcome.result["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_a_crashing_tool_returns_a_generic_error_without_its_details() -> None:
    outcome = run(name="double", arguments='{"n": 666}')
    assert outcome.result == {
        "error": {"type": "tool_error", "message": "The tool double failed unexpectedly."}
    }
    assert "sk-live" not in outcome.content()


@override_settings(TOOL_RESULT_CHAR_LIMIT=50)
def test_a_long_result_is_cut_visibly() -> None:
    content = ToolOutcome(result="x" * 200).content()
    assert content.startswith('"' + "x" * 49)
    assert content.endswith("[cut: the result had 202 characters]")


def test_a_chat_without_a_choice_allows_every_group_and_a_choice_is_honoured() -> None:
    assert tool_groups_allowed({}) == set(TOOL_GROUPS)
    assert tool_groups_allowed({"tools": []}) == set()
    assert tool_groups_allowed({"tools": ["weather", "bogus"]}) == {"weather"}
    assert tool_groups_allowed({"tools": "weather"}) == set(TOOL_GROUPS)


def test_only_tools_of_allowed_groups_are_offered_with_their_specs(test_source: None) -> None:
    offered = asyncio.run(tools_offered(context=CONTEXT, groups={"code"}))
    assert [tool.name for tool in offered if tool.name in ("double", "slow")] == ["double"]
    assert DOUBLE.spec() == {
        "type": "function",
        "function": {"name": "double", "description": "Doubles n.", "parameters": SCHEMA},
    }
    assert "slow" in [
        tool.name for tool in asyncio.run(tools_offered(context=CONTEXT, groups={"weather"}))
    ]


def test_a_failing_source_is_left_out_not_the_answer(test_source: None) -> None:
    class Broken:
        name = "broken"

        async def tools(self, context: ToolContext) -> list[Tool]:
            raise RuntimeError("the server is down")

    tool_source_register(Broken())
    try:
        offered = asyncio.run(tools_offered(context=CONTEXT, groups=set(TOOL_GROUPS)))
    finally:
        tool_source_unregister("broken")
    assert "double" in [tool.name for tool in offered]


def test_the_installed_sources_offer_the_builtin_and_chat_tools() -> None:
    names = {
        tool.name for tool in asyncio.run(tools_offered(context=CONTEXT, groups=set(TOOL_GROUPS)))
    }
    assert {"get_weather", "read_chat_tree"} <= names
