"""Serve Vero: Daphne, on uvloop's event loop.

    python -m vero.serve -b 127.0.0.1 -p 8000 vero.asgi:application

takes Daphne's arguments. Daphne creates its event loop when `daphne.server` is first
imported, so the loop's kind is chosen here, before that. On uvloop, the loop's own work per
streamed chunk (the socket reads and writes of the provider's stream and the browser's) costs
less than on asyncio's pure-Python loop (docs/chats.md has the measurements;
`BENCH_EVENT_LOOP=asyncio make bench` serves on asyncio's loop to compare).
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


def main(argv: list[str]) -> None:
    if "daphne.server" in sys.modules:
        raise RuntimeError("daphne.server was imported before the event loop was chosen")
    event_loop_install()
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
