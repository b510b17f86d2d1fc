"""Two Daphne processes sharing PostgreSQL and Redis: each socket gets each event exactly once.

Every process LISTENs and delivers to its own sockets only; a relay through Redis groups from
every process would deliver one copy per process. When one process's listener connection is
killed, that process's sockets are told to resync and the other's are not.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from accounts.models import User
from realtime.listener import APPLICATION_NAME
from tests.live_server import LiveServer, live_server_start
from tests.realtime.helpers import publish_in_atomic, session_cookie

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def two_servers(django_db_setup: None, django_db_blocker: Any) -> Iterator[list[LiveServer]]:
    with django_db_blocker.unblock():
        servers = [live_server_start(extra_env={"REDIS_URL": REDIS_URL}) for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


async def _socket(server: LiveServer, session: str) -> ClientConnection:
    """A tab's socket to `server`, as a page served by it opens one; returns after `ready`."""
    host = server.url.removeprefix("http://")
    tab = await connect(
        f"ws://{host}/ws/",
        origin=Origin(server.url),
        additional_headers={"Cookie": f"sessionid={session}"},
        open_timeout=30,
    )
    assert await _frame(tab, 30) == {"type": "ready"}
    return tab


async def _frame(tab: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return dict(orjson.loads(await asyncio.wait_for(tab.recv(), timeout)))


async def _frames_within(tab: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Every frame that arrives within `seconds` (an event's version `at` checked, then left
    out, so that frames compare by what they say)."""
    frames: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            received = await _frame(tab, left)
        except TimeoutError:
            break
        if received["type"] == "event":
            assert isinstance(received.pop("at"), str)
        frames.append(received)
    return frames


async def _publish_committed(user_id: uuid.UUID) -> str:
    chat_id = uuid.uuid4()
    await asyncio.to_thread(publish_in_atomic, user_id, "chat.updated", chat_id, False)
    return str(chat_id)


def _listener_kill(server: LiveServer) -> int:
    """Terminate the listener connection of `server`'s process; how many backends went."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [f"{APPLICATION_NAME}:{server.process.pid}"],
            )
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def _event(chat_id: str) -> dict[str, str]:
    return {"type": "event", "kind": "chat.updated", "chat": chat_id}


def test_a_socket_on_each_process_gets_each_event_exactly_once(
    two_servers: list[LiveServer], alice: User, bob: User
) -> None:
    session = session_cookie(alice)
    bobs_session = session_cookie(bob)

    async def scenario() -> None:
        tabs = [await _socket(server, session) for server in two_servers]
        bobs = await _socket(two_servers[0], bobs_session)
        try:
            chat_id = await _publish_committed(alice.id)
            received = await asyncio.gather(*(_frames_within(tab, 1.5) for tab in tabs))
            assert received == [[_event(chat_id)], [_event(chat_id)]]
            assert await _frames_within(bobs, 0.2) == []
        finally:
            for tab in [*tabs, bobs]:
                await tab.close()

    asyncio.run(scenario())


def test_killing_one_processs_listener_resyncs_only_its_sockets(
    two_servers: list[LiveServer], alice: User
) -> None:
    session = session_cookie(alice)
    killed, kept = two_servers

    async def scenario() -> None:
        on_killed, on_kept = await _socket(killed, session), await _socket(kept, session)
        try:
            assert await asyncio.to_thread(_listener_kill, killed) == 1
            assert await _frame(on_killed, 10) == {"type": "resync"}
            assert await _frames_within(on_kept, 0.5) == []
            # After its reconnect, the process delivers again, still once per socket.
            chat_id = await _publish_committed(alice.id)
            received = await asyncio.gather(
                _frames_within(on_killed, 1.5), _frames_within(on_kept, 1.5)
            )
            assert received == [[_event(chat_id)], [_event(chat_id)]]
        finally:
            await on_killed.close()
            await on_kept.close()

    asyncio.run(scenario())


def test_a_real_client_sees_why_it_was_closed(two_servers: list[LiveServer], alice: User) -> None:
    """Through Daphne itself (which refuses close codes outside 1000 and 3000-4999)."""
    session = session_cookie(alice)
    server = two_servers[0]

    async def closed_with(headers: dict[str, str], sent: str | None = None) -> int | None:
        host = server.url.removeprefix("http://")
        async with connect(
            f"ws://{host}/ws/",
            origin=Origin(server.url),
            additional_headers=headers,
        ) as tab:
            if sent is not None:
                assert await _frame(tab, 30) == {"type": "ready"}
                await tab.send(sent)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(tab.recv(), 10)
            return tab.close_code

    async def scenario() -> None:
        assert await closed_with({}) == 4401
        too_big = '{"type": "ping", "pad": "' + "x" * 5000 + '"}'
        assert await closed_with({"Cookie": f"sessionid={session}"}, too_big) == 4413

    asyncio.run(scenario())


def test_another_origin_is_refused_at_the_handshake(
    two_servers: list[LiveServer], alice: User
) -> None:
    session = session_cookie(alice)
    host = two_servers[0].url.removeprefix("http://")

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                f"ws://{host}/ws/",
                origin=Origin("https://evil.example"),
                additional_headers={"Cookie": f"sessionid={session}"},
            )
        assert refused.value.response.status_code == 403

    asyncio.run(scenario())
