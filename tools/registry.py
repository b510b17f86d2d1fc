"""The one registry of the tools a model may call, whatever their source.

A *source* (the built-in tools, the archive's, later an MCP server's) lists the tools it offers
for one answer; a *tool* is a name, a description, a JSON schema for its arguments, the group
that a chat's settings allow or refuse, and a function. The generation's loop
(`chats.worker`) asks `tools_offered` what to offer and `tool_execute` to run a call; it knows
nothing of any source, so a new source plugs in by `tool_source_register` alone.

A call never raises into the loop: unknown tools, arguments that are not JSON or do not match
the schema, a `ToolError`, a timeout and an unexpected failure all come back as a structured
error result (`{"error": {"type", "message"}}`) that the model reads and can act on. docs/tools.md
is the whole contract.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from vero.lib.db import connection_release

logger = logging.getLogger(__name__)

# The groups a chat's settings allow or refuse (`Chat.settings["tools"]`, a list of them);
# a chat without the setting allows every group.
TOOL_GROUPS: dict[str, str] = {
    "archive": "Archive",
    "chat_tree": "Chat versions",
    "code": "Run code",
    "weather": "Weather",
}


@dataclass(frozen=True)
class ToolContext:
    """Who a call acts for: tools read and write with this user's permissions only."""

    user_id: uuid.UUID
    chat_id: uuid.UUID
    message_id: uuid.UUID  # the answer whose step made the call


class ToolError(Exception):
    """An expected failure a tool reports to the model (not found, refused, too large…)."""

    def __init__(self, message: str, *, type_: str = "tool_error") -> None:
        super().__init__(message)
        self.message = message
        self.type = type_


# A tool's function: sync functions run in a worker thread (they may use the ORM); async ones
# on the generation loop (they must not block it).
ToolFunction = Callable[[ToolContext, dict[str, Any]], Any]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of type "object"
    group: str
    function: ToolFunction = field(repr=False, compare=False)
    timeout_seconds: float | None = None  # TOOL_TIMEOUT_SECONDS when None

    def spec(self) -> dict[str, Any]:
        """The tool as the OpenAI chat completions API (and LiteLLM) take it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


class ToolSource(Protocol):
    """Something that offers tools: asked once per answer, with the answer's context."""

    @property
    def name(self) -> str: ...

    def tools(self, context: ToolContext) -> Awaitable[Sequence[Tool]]: ...


@dataclass(frozen=True)
class StaticSource:
    """A source whose tools are fixed at registration (the built-in and the archive's)."""

    name: str
    static_tools: tuple[Tool, ...]

    async def tools(self, context: ToolContext) -> Sequence[Tool]:
        return self.static_tools


@dataclass(frozen=True)
class ToolOutcome:
    """What a call gave back: its result (JSON-able) and whether it is an error."""

    result: Any
    is_error: bool = False

    def content(self) -> str:
        """The result as the provider reads it: JSON, cut to TOOL_RESULT_CHAR_LIMIT."""
        text = orjson.dumps(self.result, default=str).decode()
        limit = int(settings.TOOL_RESULT_CHAR_LIMIT)
        if len(text) > limit:
            return text[:limit] + f"… [cut: the result had {len(text)} characters]"
        return text


_sources: dict[str, ToolSource] = {}
_validators: dict[int, Draft202012Validator] = {}


def tool_source_register(source: ToolSource) -> ToolSource:
    """Add a source (call from an AppConfig.ready); a source of the same name is replaced."""
    _sources[source.name] = source
    return source


def tool_source_unregister(name: str) -> None:
    _sources.pop(name, None)


def tool_groups_allowed(chat_settings: Mapping[str, Any]) -> set[str]:
    """The groups a chat's settings allow: all of them unless the chat chose."""
    chosen = chat_settings.get("tools")
    if not isinstance(chosen, list):
        return set(TOOL_GROUPS)
    return {group for group in chosen if group in TOOL_GROUPS}


async def tools_offered(*, context: ToolContext, groups: Iterable[str]) -> list[Tool]:
    """The tools to offer one answer: every source's tools in the allowed groups, by name.

    A source that fails is left out (logged), never the answer.
    """
    allowed = set(groups)
    found: dict[str, Tool] = {}
    for source in list(_sources.values()):
        try:
            offered = await source.tools(context)
        except Exception:
            logger.exception("tool source %s failed to list its tools", source.name)
            continue
        for tool in offered:
            if tool.group in allowed and tool.name not in found:
                found[tool.name] = tool
    return [found[name] for name in sorted(found)]


def _validator(tool: Tool) -> Draft202012Validator:
    key = id(tool.parameters)
    validator = _validators.get(key)
    if validator is None:
        Draft202012Validator.check_schema(tool.parameters)
        validator = _validators[key] = Draft202012Validator(tool.parameters)
    return validator


def tool_arguments_parse(tool: Tool, arguments: str) -> dict[str, Any]:
    """The call's arguments, parsed and checked against the tool's schema; raise ToolError."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError as error:
        raise ToolError(
            f"The arguments are not valid JSON: {error}", type_="invalid_arguments"
        ) from error
    if not isinstance(parsed, dict):
        raise ToolError("The arguments must be a JSON object.", type_="invalid_arguments")
    problems = sorted(_validator(tool).iter_errors(parsed), key=lambda problem: problem.path)
    if problems:
        described = "; ".join(
            f"{'/'.join(str(p) for p in problem.absolute_path) or 'arguments'}: {problem.message}"
            for problem in problems[:5]
        )
        raise ToolError(
            f"The arguments do not match the schema: {described}", type_="invalid_arguments"
        )
    return parsed


def _error(type_: str, message: str) -> ToolOutcome:
    return ToolOutcome(result={"error": {"type": type_, "message": message}}, is_error=True)


def _off_loop(function: ToolFunction) -> Callable[[ToolContext, dict[str, Any]], Awaitable[Any]]:
    def run_and_close(context: ToolContext, arguments: dict[str, Any]) -> Any:
        try:
            return function(context, arguments)
        finally:
            connection_release()

    return sync_to_async(run_and_close, thread_sensitive=False)


async def tool_execute(
    *, tools: Sequence[Tool], name: str, arguments: str, context: ToolContext
) -> ToolOutcome:
    """Run one call of the model; every failure becomes a structured error result."""
    tool = next((tool for tool in tools if tool.name == name), None)
    if tool is None:
        offered = ", ".join(tool.name for tool in tools) or "none"
        return _error("unknown_tool", f"There is no tool named {name!r}. Offered: {offered}.")
    try:
        parsed = tool_arguments_parse(tool, arguments)
    except ToolError as error:
        return _error(error.type, error.message)
    except SchemaError:
        logger.exception("tool %s has an invalid schema", tool.name)
        return _error("tool_error", f"The tool {tool.name} is misconfigured.")
    run = tool.function if inspect.iscoroutinefunction(tool.function) else _off_loop(tool.function)
    timeout = tool.timeout_seconds or float(settings.TOOL_TIMEOUT_SECONDS)
    try:
        result = await asyncio.wait_for(run(context, parsed), timeout=timeout)
    except ToolError as error:
        return _error(error.type, error.message)
    except TimeoutError:
        return _error("timeout", f"The tool {tool.name} took longer than {timeout:g} seconds.")
    except Exception:
        logger.exception("tool %s failed", tool.name)
        return _error("tool_error", f"The tool {tool.name} failed unexpectedly.")
    return ToolOutcome(result=result)
