"""`run_code` as the model meets it: offered in the `code` group, called through `tool_execute`
with its arguments checked against the schema, its outcomes structured results."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from tools.builtins import builtin_source
from tools.code import RUN_CODE_TOOL
from tools.registry import ToolContext, tool_execute, tools_offered
from tools.sandbox import pool as sandbox_pool_module
from tools.sandbox.pool import sandbox_pool, sandbox_pool_close

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALICE = ToolContext(user_id=uuid.uuid4(), chat_id=uuid.uuid4(), message_id=uuid.uuid4())


@pytest_asyncio.fixture(loop_scope="module", scope="module", autouse=True)
async def _pool_closed_at_the_end() -> AsyncIterator[None]:
    yield
    await sandbox_pool_close()


@pytest.fixture(autouse=True)
def _short_limits(settings: Any) -> None:
    settings.SANDBOX_TIME_SECONDS = 1.0
    settings.SANDBOX_OUTPUT_CHARS = 500


async def call(arguments: Any) -> tuple[Any, bool]:
    text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    outcome = await tool_execute(
        tools=[RUN_CODE_TOOL], name="run_code", arguments=text, context=ALICE
    )
    return outcome.result, outcome.is_error


async def test_run_code_is_a_builtin_offered_in_the_code_group() -> None:
    offered = await tools_offered(context=ALICE, groups=["code"])
    assert [tool.name for tool in offered] == ["run_code"]
    assert RUN_CODE_TOOL in await builtin_source.tools(ALICE)


async def test_a_chat_that_refuses_the_code_group_is_not_offered_run_code() -> None:
    offered = await tools_offered(context=ALICE, groups=["weather", "archive"])
    assert "run_code" not in [tool.name for tool in offered]


async def test_alices_code_runs_and_its_result_and_console_come_back() -> None:
    result, is_error = await call({"code": "console.log('sum'); [1, 2, 3].reduce((a, b) => a + b)"})
    assert is_error is False
    assert result["ok"] is True
    assert result["result"] == 6
    assert result["console"] == "sum"


async def test_a_syntax_error_is_a_result_the_model_can_read() -> None:
    result, is_error = await call({"code": "function ("})
    assert is_error is False
    assert result["ok"] is False
    assert result["error"]["type"] == "SyntaxError"


async def test_an_infinite_loop_is_stopped_at_the_settings_limit() -> None:
    result, _ = await call({"code": "for (;;) {}"})
    assert result["error"] == {
        "type": "time_limit",
        "message": "The code ran longer than 1 s and was stopped.",
    }
    result, _ = await call({"code": "'still ' + 'here'"})
    assert result["result"] == "still here"


async def test_the_output_limit_comes_from_the_settings() -> None:
    result, _ = await call({"code": "console.log('q'.repeat(10000))"})
    assert result["truncated"] is True
    assert result["console"] == "q" * 500


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("{}", "'code' is a required property"),
        ('{"code": ""}', "should be non-empty"),
        ('{"code": 42}', "42 is not of type 'string'"),
        ('{"code": "1", "language": "python"}', "Additional properties are not allowed"),
        ('{"code": "1"', "not valid JSON"),
        ('["1+1"]', "must be a JSON object"),
    ],
)
async def test_arguments_that_do_not_match_the_schema_are_refused_before_anything_runs(
    arguments: str, problem: str
) -> None:
    result, is_error = await call(arguments)
    assert is_error is True
    assert result["error"]["type"] == "invalid_arguments"
    assert problem in result["error"]["message"]


async def test_code_longer_than_the_limit_is_refused() -> None:
    result, is_error = await call({"code": "1;" * 60_000})
    assert is_error is True
    assert "is too long" in result["error"]["message"]


async def test_a_sandbox_that_cannot_start_is_a_tool_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await sandbox_pool_close()
    monkeypatch.setattr(sandbox_pool_module, "WORKER_PATH", Path("/nonexistent/worker.py"))
    result, is_error = await call({"code": "1+1"})
    assert is_error is True
    assert result["error"] == {
        "type": "sandbox_unavailable",
        "message": "The code sandbox is not available right now.",
    }
    await sandbox_pool_close()
    monkeypatch.undo()
    result, is_error = await call({"code": "1+1"})
    assert (result["result"], is_error) == (2, False)


async def test_the_pool_is_one_per_event_loop_and_reused() -> None:
    await call({"code": "1"})
    assert sandbox_pool() is sandbox_pool()


async def test_run_code_works_on_a_loop_in_another_thread_as_the_generation_loop_is(
    settings: Any,
) -> None:
    settings.SANDBOX_TIME_SECONDS = 0.5
    found: dict[str, Any] = {}

    async def on_that_loop() -> None:
        try:
            found["loop"], _ = await call({"code": "while (true) {}"})
            found["after"], _ = await call({"code": "6 * 7"})
        finally:
            await sandbox_pool_close()

    thread = threading.Thread(target=lambda: asyncio.run(on_that_loop()))
    thread.start()
    await asyncio.to_thread(thread.join, 20)
    assert found["loop"]["error"]["type"] == "time_limit"
    assert found["after"]["result"] == 42
