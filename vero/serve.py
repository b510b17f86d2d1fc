"""Serve Vero: Daphne, on uvloop's event loop.

    python -m vero.serve -b 127.0.0.1 -p 8000 vero.asgi:application

takes Daphne's arguments. It differs from `daphne` in two ways:
- Daphne creates its event loop when `daphne.server` is first imported, so the loop's kind is
  chosen here, before that. On uvloop, the loop's own work per streamed chunk (the socket
  reads and writes of the provider's stream and the browser's) costs less than on asyncio's
  pure-Python loop (docs/chats.md has the measurements; `BENCH_EVENT_LOOP=asyncio make bench`
  serves on asyncio's loop to compare).
- When the server stops, the provider HTTP sessions opened on its loop are closed (left
  open, each printed an "Unclosed client session" traceback at exit).
"""

from __future__ import annotations

import asyncio
import sys


def event_loop_install() -> None:
    """Make the loops created from now on uvloop's (asyncio's own where uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows): asyncio's loop serves too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def prepare(*, uvloop: bool = True) -> None:
    """Choose the event loop, before anything imports `daphne.server` (`django.setup()` does,
    through the `daphne` app)."""
    if "daphne.server" in sys.modules:
        raise RuntimeError("daphne.server was imported before the event loop was chosen")
    if uvloop:
        event_loop_install()


def serve(argv: list[str]) -> None:
    """Run Daphne's command line with `argv`; close the provider sessions when it stops."""
    from daphne.cli import CommandLineInterface
    from daphne.server import twisted_loop

    try:
        CommandLineInterface().run(argv)
    finally:
        _sessions_close(twisted_loop)


def main(argv: list[str]) -> None:
    prepare()
    serve(argv)


def _sessions_close(loop: asyncio.AbstractEventLoop) -> None:
    """Close the provider sessions opened on the server's loop, now stopped."""
    if loop.is_closed() or "models_registry.llm" not in sys.modules:
        return
    from models_registry.llm import llm_close

    loop.run_until_complete(llm_close())


if __name__ == "__main__":
    main(sys.argv[1:])
