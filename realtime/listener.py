"""This process's listener: one LISTEN on the events' channel, delivered to this process's sockets.

Services publish with `pg_notify` inside their transaction (`realtime.events`); PostgreSQL
sends the event to every listening session when the write commits. Each server process holds
one such session, on a direct connection of its own (`DATABASE_URL_UNPOOLED` when the main
URL goes through a pooler, whose pooled sessions cannot keep a LISTEN), and hands each event to
the sockets of its user that this process holds (`realtime.sockets`). Nothing is forwarded to
Redis: every process receives every event, so with N processes a relay would deliver N copies.

A lost connection is retried with capped exponential backoff and jitter. Events sent while it
was down are not replayed by PostgreSQL, so after every reconnect each socket is told to
resync (the tab then asks the sync API for what changed). A connection that silently died (a
half-open TCP connection that never errors) is caught by a `SELECT 1` whenever a check period
passes, bounded by a timeout.

The task runs on the server's event loop, started by the first socket (`listener_start`), and
ends with the loop (`listener_stop`, from `vero.lifecycle.process_retire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from typing import Any

import environ
import orjson
import psycopg
from django.conf import settings
from django.db import connections
from psycopg.conninfo import make_conninfo

from realtime.events import CHANNEL
from realtime.sockets import sockets_broadcast, sockets_deliver

logger = logging.getLogger(__name__)

APPLICATION_NAME = "vero-listener"
BACKOFF_FIRST_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 10.0
RESYNC_FRAME = '{"type":"resync"}'
# Settings of Django's PostgreSQL backend that are not libpq connection parameters.
_DJANGO_ONLY_OPTIONS = {"pool", "isolation_level", "server_side_binding", "assume_role"}


def listener_conninfo() -> str:
    """The listener's connection string: DATABASE_URL_UNPOOLED, else the default database's.

    Read when connecting, not at import: tests and the live server point the default
    database at the test database after settings load.
    """
    if settings.DATABASE_URL_UNPOOLED:
        database: dict[str, Any] = dict(environ.Env.db_url_config(settings.DATABASE_URL_UNPOOLED))
    else:
        database = dict(connections["default"].settings_dict)
    options = {
        key: value
        for key, value in (database.get("OPTIONS") or {}).items()
        if key not in _DJANGO_ONLY_OPTIONS
    }
    parameters = {
        "dbname": database.get("NAME"),
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        "host": database.get("HOST"),
        "port": database.get("PORT"),
        **options,
        # Named with the process id, so an operator (or a test) can find one process's listener.
        "application_name": f"{APPLICATION_NAME}:{os.getpid()}",
        "connect_timeout": 10,
        # The kernel's own probe of a silent peer, besides the SELECT 1 check.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    return make_conninfo("", **{key: value for key, value in parameters.items() if value})


def backoff_seconds(failures: int) -> float:
    """The wait before retry number `failures` (1, 2, ...): doubling, capped, with jitter so
    that processes that lost the database together do not come back in step."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, failures - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311  (timing, not security)


def event_frame(payload: str) -> tuple[str, str] | None:
    """The user an event is for and the frame a socket receives (the payload without `user`);
    None for a payload that is not an event (logged: a publisher's bug, never input)."""
    try:
        event = orjson.loads(payload)
        user_id = event.pop("user")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        logger.warning("ignored a notification that is not an event: %.200s", payload)
        return None
    event.pop("type", None)
    return str(user_id), orjson.dumps({"type": "event", **event}).decode()


class Listener:
    """The LISTEN task of this process and its state: whether it is listening now, and how
    many times it connected (each connection after the first made the sockets resync)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.connections = 0

    def start(self) -> None:
        """Run on the running loop unless it already does (a new loop, as each async test
        has, gets a new task)."""
        loop = asyncio.get_running_loop()
        if self.task is not None and not self.task.done() and self.task.get_loop() is loop:
            return
        self.listening = asyncio.Event()
        self.task = loop.create_task(self._run(), name=APPLICATION_NAME)

    async def stop(self) -> None:
        """End the task and its connection."""
        task, self.task = self.task, None
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    listener_conninfo(), autocommit=True
                )
            except Exception as error:
                logger.warning("realtime listener could not connect: %s", error)
            else:
                failures = 0
                await self._listen(connection)
            failures += 1
            await asyncio.sleep(backoff_seconds(failures))

    async def _listen(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """LISTEN on `connection` until it fails; tell the sockets to resync once it listens."""
        try:
            await connection.execute(f"LISTEN {CHANNEL}")
            self.connections += 1
            # A socket registered before now may have missed events (this is a reconnect, or
            # the first connect was slower than a socket's wait): it resyncs.
            await sockets_broadcast(RESYNC_FRAME)
            self.listening.set()
            logger.info("realtime listener listening (connection %d)", self.connections)
            await self._receive(connection)
        except Exception as error:
            logger.warning("realtime listener lost its connection: %s", error)
        finally:
            self.listening.clear()
            # Not `async with`: its exit rolls back first, which on a dead socket could hang.
            await connection.close()

    async def _receive(self, connection: psycopg.AsyncConnection[Any]) -> None:
        check_seconds = settings.SOCKET_LISTENER_CHECK_SECONDS
        check_timeout = settings.SOCKET_LISTENER_CHECK_TIMEOUT_SECONDS
        while True:
            async for notification in connection.notifies(timeout=check_seconds):
                await _deliver(notification.payload)
            # Notifications arriving during the check wait in psycopg's backlog for the
            # next `notifies`.
            await _connection_check(connection, check_timeout)


async def _connection_check(connection: psycopg.AsyncConnection[Any], timeout: float) -> None:
    """Raise unless `connection` answers a `SELECT 1` within `timeout` seconds.

    A check without an answer is not cancelled the usual way: psycopg would send the server a
    cancel request and wait for it, seconds more on a server that no longer answers. The
    connection is closed first, which ends the query at once.
    """
    check = asyncio.ensure_future(connection.execute("SELECT 1"))
    try:
        done, _ = await asyncio.wait({check}, timeout=timeout)
    except asyncio.CancelledError:
        _abandon(connection, check)
        raise
    if check in done:
        check.result()
        return
    _abandon(connection, check)
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await check
    raise ConnectionError(f"no answer to a check within {timeout} s")


def _abandon(connection: psycopg.AsyncConnection[Any], check: asyncio.Future[Any]) -> None:
    connection.pgconn.finish()
    check.cancel()


async def _deliver(payload: str) -> None:
    frame = event_frame(payload)
    if frame is None:
        return
    user_id, text = frame
    try:
        await sockets_deliver(user_id=user_id, text=text)
    except Exception:
        logger.exception("realtime listener could not deliver an event")


listener = Listener()


def listener_start() -> None:
    """Start this process's listener on the running loop; nothing when it already runs."""
    listener.start()


async def listener_listening(timeout: float) -> bool:
    """Wait up to `timeout` seconds for the listener to be listening; whether it is."""
    try:
        await asyncio.wait_for(listener.listening.wait(), timeout)
    except TimeoutError:
        return False
    return True


async def listener_stop() -> None:
    """Stop this process's listener (the server is stopping)."""
    await listener.stop()
