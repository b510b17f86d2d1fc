"""Serve Vero with Daphne.

    python -m vero.serve -b 127.0.0.1 -p 8000 vero.asgi:application

takes Daphne's arguments and runs Daphne's command line. When the server stops, it ends the
answers it was generating (`vero.lifecycle.process_retire`) and closes the provider HTTP
sessions opened on the server's loop: left open, each printed an "Unclosed client session"
traceback at exit.
"""

from __future__ import annotations

import asyncio
import logging
import sys


def serve(argv: list[str]) -> None:
    """Run Daphne's command line with `argv`; close the provider sessions when it stops."""
    from daphne.cli import CommandLineInterface
    from daphne.server import twisted_loop

    try:
        CommandLineInterface().run(argv)
    finally:
        _retire(twisted_loop)
        _sessions_close(twisted_loop)


RETIRE_TIMEOUT_SECONDS = 5.0


def _retire(loop: asyncio.AbstractEventLoop) -> None:
    """End this process's answers on the server's loop, now stopped (a bounded wait: a stop
    must not hang on an unreachable database or Redis)."""
    if loop.is_closed() or "chats.worker" not in sys.modules:
        return
    from vero.lifecycle import process_retire

    try:
        loop.run_until_complete(asyncio.wait_for(process_retire(), RETIRE_TIMEOUT_SECONDS))
    except Exception:
        logging.getLogger(__name__).exception("could not end this process's answers")


def _sessions_close(loop: asyncio.AbstractEventLoop) -> None:
    """Close the provider sessions opened on the server's loop, now stopped."""
    if loop.is_closed() or "models_registry.llm" not in sys.modules:
        return
    from models_registry.llm import llm_close

    loop.run_until_complete(llm_close())


if __name__ == "__main__":
    serve(sys.argv[1:])
