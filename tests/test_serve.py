"""`python -m vero.serve`: Daphne, closing the provider sessions when it stops."""

from __future__ import annotations

import asyncio
from typing import Any

from vero import serve


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
