"""`run_code`: the model runs JavaScript in the sandbox (`tools.sandbox`) and reads what it gave.

The code is the model's, so it is untrusted: it runs in a separate QuickJS worker process with
no filesystem, no process and no network but `api.fetch` (served here, through the URL guard),
within `SANDBOX_*` limits. A failure of the code (a syntax error, a throw, the time or memory
limit) is the code's result, `{"ok": false, "error": …}`, with its console output kept: the
model reads it and fixes its code. Only a sandbox that cannot run at all is a tool error.
"""

from __future__ import annotations

from typing import Any

from tools.registry import Tool, ToolContext, ToolError
from tools.sandbox.pool import SandboxUnavailableError, sandbox_pool

CODE_CHAR_LIMIT = 100_000


async def run_code(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run the code in a sandbox worker; the outcome is `ok`, `result`/`error`, `console`."""
    try:
        return await sandbox_pool().run(str(arguments["code"]))
    except SandboxUnavailableError as error:
        raise ToolError(
            "The code sandbox is not available right now.", type_="sandbox_unavailable"
        ) from error


RUN_CODE_TOOL = Tool(
    name="run_code",
    description=(
        "Run JavaScript (QuickJS: ES2020, plus Array/String.at, Object.hasOwn, findLast, "
        "setTimeout) in an isolated sandbox and get back its result and console output. "
        "The result is the value of the last expression; code that uses "
        "top-level `await` or `return` runs as an async function body and its returned value "
        "is the result (a promise is awaited). console.log/info/warn/error are captured. "
        "There is no filesystem, no require/import of modules, no process and no network, "
        "except `await api.fetch(url, {method, headers, body})` for public http(s) URLs, "
        "which returns {ok, status, statusText, headers, url, body, text(), json()} and does "
        "not follow redirects. Limits: a few seconds of time, a small heap, a few fetches, "
        "and the output is cut when long. Each run starts fresh: nothing is kept between runs."
    ),
    parameters={
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "minLength": 1,
                "maxLength": CODE_CHAR_LIMIT,
                "description": "The JavaScript to run.",
            }
        },
        "required": ["code"],
        "additionalProperties": False,
    },
    group="code",
    function=run_code,
)
