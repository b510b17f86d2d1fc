"""This process's listener: its connection, its reconnects (each followed by a resync), its end.

The listener's backend is killed the way an operator or a failover would (pg_terminate_backend,
found by the listener's application_name); a connection that silently stops answering (a
half-open TCP connection) is made with a proxy between the listener and PostgreSQL that stops
forwarding without closing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connection

from accounts.models import User
from realtime import consumers
from realtime.listener import (
    APPLICATION_NAME,
    BACKOFF_MAX_SECONDS,
    backoff_seconds,
    event_frame,
    listener,
    listener_conninfo,
    listener_stop,
)
from tests.realtime.helpers import event_publish, frame, opened, session_cookie, socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh(settings: Any) -> Iterator[None]:
    settings.LLM_PRELOAD = False
    consumers.user_connects.clear()
    yield
    consumers.user_connects.clear()


@pytest_asyncio.fixture(autouse=True)
async def _listener_stopped_after() -> AsyncIterator[None]:
    yield
    await listener_stop()


@pytest.fixture
def alice_session(alice: User) -> str:
    return session_cookie(alice)


def _listener_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()",
            [f"{APPLICATION_NAME}:{os.getpid()}"],
        )
        pids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return pids


def _listener_kill() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            [f"{APPLICATION_NAME}:{os.getpid()}"],
        )
        killed = int(cursor.fetchone()[0])
    connection.close()
    return killed


# -- pure parts ------------------------------------------------------------------------------


def test_an_event_frame_is_the_payload_without_its_user() -> None:
    user = str(uuid.uuid4())
    payload = f'{{"user": "{user}", "kind": "message.created", "chat": "c", "message": "m",'
    payload += ' "origin": "tab-1", "at": "2026-12-03T16:00:00Z", "type": "forged"}'
    assert event_frame(payload) == (
        user,
        '{"type":"event","kind":"message.created","chat":"c","message":"m",'
        '"origin":"tab-1","at":"2026-12-03T16:00:00Z"}',
    )


@pytest.mark.parametrize("payload", ["", "not json", "[1]", '"x"', '{"kind": "chat.created"}'])
def test_a_notification_that_is_no_event_is_ignored(payload: str) -> None:
    assert event_frame(payload) is None


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    ceilings = [max(backoff_seconds(failures) for _ in range(200)) for failures in (1, 2, 3)]
    assert 0.1 <= ceilings[0] <= 0.2
    assert 0.2 < ceilings[1] <= 0.4
    assert 0.4 < ceilings[2] <= 0.8
    late = [backoff_seconds(40) for _ in range(200)]
    assert max(late) <= BACKOFF_MAX_SECONDS
    assert min(late) >= BACKOFF_MAX_SECONDS / 2
    assert len(set(late)) > 100  # jittered: processes do not retry in step


def test_the_listener_connects_as_the_default_database_by_default(settings: Any) -> None:
    settings.DATABASE_URL_UNPOOLED = ""
    info = psycopg.conninfo.conninfo_to_dict(listener_conninfo())
    assert info["dbname"] == connection.settings_dict["NAME"]
    assert info["application_name"] == f"{APPLICATION_NAME}:{os.getpid()}"
    assert "pool" not in info


def test_the_unpooled_url_wins_when_set(settings: Any) -> None:
    settings.DATABASE_URL_UNPOOLED = "postgres://listener:secret@db-direct.internal:5433/vero"
    info = psycopg.conninfo.conninfo_to_dict(listener_conninfo())
    assert (info["host"], info["port"], info["dbname"]) == ("db-direct.internal", "5433", "vero")
    assert (info["user"], info["password"]) == ("listener", "secret")


# -- a real listener -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_one_listener_serves_every_socket_of_the_process(alice_session: str) -> None:
    tabs = [await opened(socket(session=alice_session)) for _ in range(3)]
    assert len(await sync_to_async(_listener_backends)()) == 1
    for tab in tabs:
        await tab.disconnect()


@pytest.mark.asyncio
async def test_a_killed_listener_reconnects_and_its_sockets_resync(
    alice: User, alice_session: str
) -> None:
    tab = await opened(socket(session=alice_session))
    connections_before = listener.connections
    assert await sync_to_async(_listener_kill)() == 1
    assert await frame(tab) == {"type": "resync"}
    assert listener.connections == connections_before + 1
    chat_id = await event_publish(alice.id)
    assert (await frame(tab))["chat"] == str(chat_id)
    await tab.disconnect()


@pytest.mark.asyncio
async def test_stopping_the_listener_closes_its_connection(alice_session: str) -> None:
    tab = await opened(socket(session=alice_session))
    await tab.disconnect()
    assert len(await sync_to_async(_listener_backends)()) == 1
    await listener_stop()
    assert await _eventually(lambda: _listener_backends() == [])


async def _eventually(check: Any, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await sync_to_async(check)():
            return True
        await asyncio.sleep(0.1)
    return False


class FreezableProxy:
    """A TCP proxy to PostgreSQL that can stop forwarding while keeping its connections open:
    to the listener, the server just stops answering, as over a half-open connection."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.frozen: set[asyncio.Event] = set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._live: list[asyncio.Event] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def freeze(self) -> None:
        """Every connection open now goes silent; new ones forward as usual."""
        for flowing in self._live:
            flowing.clear()
        self._live = []

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        flowing = asyncio.Event()
        flowing.set()
        self._live.append(flowing)
        await asyncio.gather(
            self._pipe(reader, upstream_writer, flowing),
            self._pipe(upstream_reader, writer, flowing),
        )

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await flowing.wait()  # frozen: held forever, nothing closed
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.mark.asyncio
async def test_a_silent_connection_is_found_and_replaced(
    alice: User, alice_session: str, settings: Any
) -> None:
    database = connection.settings_dict
    proxy = await FreezableProxy(
        database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)
    ).start()
    user = database["USER"] or "postgres"
    settings.DATABASE_URL_UNPOOLED = (
        f"postgres://{user}:{database['PASSWORD'] or ''}@127.0.0.1:{proxy.port}/{database['NAME']}"
    )
    settings.SOCKET_LISTENER_CHECK_SECONDS = 0.3
    settings.SOCKET_LISTENER_CHECK_TIMEOUT_SECONDS = 0.3
    try:
        tab = await opened(socket(session=alice_session))
        proxy.freeze()
        # Nothing errors; the check goes unanswered, and the listener connects afresh.
        assert await frame(tab, timeout=5) == {"type": "resync"}
        chat_id = await event_publish(alice.id)
        assert (await frame(tab))["chat"] == str(chat_id)
        await tab.disconnect()
    finally:
        await listener_stop()
        await proxy.close()


@pytest.mark.asyncio
async def test_the_process_retiring_stops_its_listener(alice_session: str) -> None:
    from vero.lifecycle import process_retire

    # An earlier test's listener backend (one behind a frozen proxy) may still be going away.
    before = set(await sync_to_async(_listener_backends)())
    tab = await opened(socket(session=alice_session))
    ours = set(await sync_to_async(_listener_backends)()) - before
    assert ours
    await tab.disconnect()
    await process_retire()
    assert listener.task is None
    assert await _eventually(lambda: not set(_listener_backends()) & ours)


@pytest.mark.asyncio
async def test_events_arriving_during_checks_are_all_delivered(
    alice: User, alice_session: str, settings: Any
) -> None:
    settings.SOCKET_LISTENER_CHECK_SECONDS = 0.01  # a check between almost every two events
    tab = await opened(socket(session=alice_session))
    connections = listener.connections
    published = [str(await event_publish(alice.id)) for _ in range(30)]
    received = [(await frame(tab))["chat"] for _ in published]
    assert received == published
    assert listener.connections == connections  # every check answered: no reconnect
    await tab.disconnect()
