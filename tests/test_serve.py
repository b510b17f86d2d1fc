"""`python -m vero.serve`: Daphne on uvloop's event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vero import serve


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_daphne_runs_on_uvloop_when_the_loop_is_chosen_first() -> None:
    chosen = _run(
        "from vero.serve import event_loop_install; event_loop_install()\n"
        "import daphne.server\n"
        "print(type(daphne.server.twisted_loop).__module__)"
    )
    assert chosen.startswith("uvloop")


def test_without_it_daphne_runs_on_asyncio() -> None:
    assert _run("import daphne.server; print(type(daphne.server.twisted_loop).__module__)") == (
        "asyncio.unix_events"
    )


def test_serving_after_daphne_chose_its_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "daphne.server", object())
    with pytest.raises(RuntimeError, match="before the event loop was chosen"):
        serve.main(["vero.asgi:application"])


def test_the_provider_sessions_close_when_the_server_stops() -> None:
    from models_registry import llm

    loop = asyncio.new_event_loop()
    try:

        async def session_open() -> Any:
            return llm._session()

        session = loop.run_until_complete(session_open())
        assert not session.closed
        serve._sessions_close(loop)  # what `serve` does once Daphne's loop has stopped
        assert session.closed
    finally:
        loop.close()
    serve._sessions_close(loop)  # a closed loop: nothing to do, no error
