"""The WebSocket /ws/ through the real ASGI application: who may open it, what it says.

Each socket goes through `vero.asgi.application` (the Origin check, the session and cookie
middleware, the route) as a browser's would; events are published as services publish them,
inside `transaction.atomic()`, and reach the socket through this process's listener.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from realtime import consumers, sockets
from realtime.consumers import EventsConsumer, user_connects
from realtime.listener import listener_stop
from realtime.sockets import sockets_count
from tests.realtime.helpers import (
    close_code,
    event_publish,
    frame,
    guest_cookie,
    opened,
    session_cookie,
    socket,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _connect_limits_fresh(settings: Any) -> Iterator[None]:
    settings.LLM_PRELOAD = False  # the first call to the application would import LiteLLM
    consumers.user_connects.clear()
    consumers.refused_connects.clear()
    yield
    consumers.user_connects.clear()
    consumers.refused_connects.clear()


@pytest_asyncio.fixture(autouse=True)
async def _listener_stopped_after() -> AsyncIterator[None]:
    """The listener runs on this test's loop; it must not outlive it."""
    yield
    await listener_stop()


@pytest.fixture
def alice_session(alice: User) -> str:
    return session_cookie(alice)


@pytest.fixture
def bob_session(bob: User) -> str:
    return session_cookie(bob)


async def _silent(communicator: WebsocketCommunicator, timeout: float = 0.5) -> bool:
    """Whether nothing more arrives on the socket within `timeout`."""
    return bool(await communicator.receive_nothing(timeout))


# -- who may connect -------------------------------------------------------------------------


async def test_a_logged_in_user_connects_and_is_ready(alice_session: str) -> None:
    communicator = await opened(socket(session=alice_session))
    assert sockets_count() == 1
    await communicator.disconnect()
    assert sockets_count() == 0


async def test_a_guest_connects_with_their_cookie() -> None:
    communicator = await opened(socket(guest=guest_cookie(uuid.uuid4())))
    await communicator.disconnect()


async def test_nobody_is_refused_with_4401() -> None:
    assert await close_code(socket()) == 4401
    assert sockets_count() == 0


async def test_a_forged_guest_cookie_is_refused() -> None:
    forged = guest_cookie(uuid.uuid4())[:-4] + "AAAA"
    assert await close_code(socket(guest=forged)) == 4401


async def test_a_session_that_no_longer_exists_is_refused(alice_session: str) -> None:
    await sync_to_async(_sessions_delete)()
    assert await close_code(socket(session=alice_session)) == 4401


def _sessions_delete() -> None:
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()


async def test_another_sites_origin_is_refused_at_the_handshake(alice_session: str) -> None:
    assert await close_code(socket(session=alice_session, origin="https://evil.example")) is None
    assert sockets_count() == 0


async def test_a_socket_without_origin_is_refused_at_the_handshake(alice_session: str) -> None:
    assert await close_code(socket(session=alice_session, origin=None)) is None


async def test_connects_past_the_limit_are_closed_with_4429(
    alice_session: str, bob_session: str, settings: Any
) -> None:
    settings.SOCKET_CONNECTS_PER_MINUTE = 3
    for _ in range(3):
        await (await opened(socket(session=alice_session))).disconnect()
    assert await close_code(socket(session=alice_session)) == 4429
    # Another user's budget is their own.
    await (await opened(socket(session=bob_session))).disconnect()


async def test_refused_attempts_from_one_address_are_limited(
    alice_session: str, settings: Any
) -> None:
    settings.SOCKET_CONNECTS_PER_MINUTE = 2
    for _ in range(2):
        assert await close_code(socket(address="203.0.113.9")) == 4401
    assert await close_code(socket(address="203.0.113.9")) == 4429
    assert await close_code(socket(guest="forged", address="203.0.113.9")) == 4429
    # Only refused attempts count: someone with a session behind that address (a proxy's,
    # shared by many) still connects.
    await (await opened(socket(session=alice_session, address="203.0.113.9"))).disconnect()


async def test_the_limit_window_starts_over(alice_session: str, settings: Any) -> None:
    settings.SOCKET_CONNECTS_PER_MINUTE = 1
    await (await opened(socket(session=alice_session))).disconnect()
    assert await close_code(socket(session=alice_session)) == 4429
    user_connects._window -= 1  # as if a minute went by
    await (await opened(socket(session=alice_session))).disconnect()


# -- frames ----------------------------------------------------------------------------------


async def test_ping_is_answered_by_pong(alice_session: str) -> None:
    communicator = await opened(socket(session=alice_session))
    await communicator.send_to(text_data='{"type": "ping"}')
    assert await frame(communicator) == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    "text",
    ['{"type": "pong"}', '{"type": "subscribe", "user": "x"}', "not json", "[1, 2]", '"ping"'],
)
async def test_other_frames_are_ignored_and_the_socket_stays(alice_session: str, text: str) -> None:
    communicator = await opened(socket(session=alice_session))
    await communicator.send_to(text_data=text)
    assert await _silent(communicator)
    await communicator.send_to(text_data='{"type": "ping"}')
    assert await frame(communicator) == {"type": "pong"}
    await communicator.disconnect()


async def test_binary_frames_are_ignored(alice_session: str) -> None:
    communicator = await opened(socket(session=alice_session))
    await communicator.send_to(bytes_data=b'{"type": "ping"}')
    assert await _silent(communicator)
    await communicator.disconnect()


async def test_an_oversized_frame_closes_the_socket_cleanly(alice_session: str) -> None:
    communicator = await opened(socket(session=alice_session))
    await communicator.send_to(text_data='{"type": "ping", "pad": "' + "é" * 2100 + '"}')
    message = await communicator.receive_output(5)
    assert message == {"type": "websocket.close", "code": 4413}
    await communicator.disconnect()
    assert sockets_count() == 0


async def test_a_socket_holds_no_channel_layer_channel(alice: User, alice_session: str) -> None:
    """With channels-redis, a consumer on the default alias would poll a Redis channel of its
    own for as long as it is open."""
    communicator = await opened(socket(session=alice_session))
    (consumer,) = sockets._by_user[str(alice.id)]
    assert isinstance(consumer, EventsConsumer)
    assert consumer.channel_layer is None
    assert not hasattr(consumer, "channel_name")
    await communicator.disconnect()


# -- events ----------------------------------------------------------------------------------


async def test_a_committed_event_reaches_the_users_socket_without_user(
    alice: User, alice_session: str
) -> None:
    communicator = await opened(socket(session=alice_session))
    chat_id = await event_publish(alice.id, kind="chat.created", origin="tab-7")
    received = await frame(communicator)
    # Every key of the payload but `user` passes through, `at` (the version) included.
    stamped = datetime.fromisoformat(received.pop("at"))
    assert abs((datetime.now(UTC) - stamped).total_seconds()) < 60
    assert received == {
        "type": "event",
        "kind": "chat.created",
        "chat": str(chat_id),
        "origin": "tab-7",
    }
    await communicator.disconnect()


async def test_a_guests_events_reach_their_socket() -> None:
    guest_id = uuid.uuid4()
    communicator = await opened(socket(guest=guest_cookie(guest_id)))
    chat_id = await event_publish(guest_id)
    assert (await frame(communicator))["chat"] == str(chat_id)
    await communicator.disconnect()


async def test_another_users_event_never_arrives(
    alice: User, bob: User, alice_session: str, bob_session: str
) -> None:
    alices = await opened(socket(session=alice_session))
    bobs = await opened(socket(session=bob_session))
    bobs_chat = await event_publish(bob.id)
    alices_chat = await event_publish(alice.id)
    assert (await frame(bobs))["chat"] == str(bobs_chat)
    assert (await frame(alices))["chat"] == str(alices_chat)
    assert await _silent(alices)
    assert await _silent(bobs)
    await alices.disconnect()
    await bobs.disconnect()


async def test_a_rolled_back_write_delivers_nothing(alice: User, alice_session: str) -> None:
    communicator = await opened(socket(session=alice_session))
    await event_publish(alice.id, rollback=True)
    committed = await event_publish(alice.id)
    # The committed one arrives; the rolled-back one, published before it, never did.
    assert (await frame(communicator))["chat"] == str(committed)
    assert await _silent(communicator)
    await communicator.disconnect()


async def test_each_tab_of_a_user_gets_each_event_once(alice: User, alice_session: str) -> None:
    tabs = [await opened(socket(session=alice_session)) for _ in range(3)]
    chat_id = await event_publish(alice.id)
    for tab in tabs:
        assert (await frame(tab))["chat"] == str(chat_id)
        assert await _silent(tab, 0.2)
    await asyncio.gather(*(tab.disconnect() for tab in tabs))


async def test_a_closed_tab_is_no_longer_delivered_to(alice: User, alice_session: str) -> None:
    closed = await opened(socket(session=alice_session))
    kept = await opened(socket(session=alice_session))
    await closed.disconnect()
    chat_id = await event_publish(alice.id)
    assert (await frame(kept))["chat"] == str(chat_id)
    assert sockets_count() == 1
    await kept.disconnect()


class _Gone:
    """A socket whose connection went away before its disconnect was handled."""

    async def frame_send(self, text: str) -> None:
        raise ConnectionResetError("gone")


class _Tab:
    def __init__(self) -> None:
        self.frames: list[str] = []

    async def frame_send(self, text: str) -> None:
        self.frames.append(text)


async def test_a_socket_whose_send_fails_is_dropped_and_the_others_still_get_the_frame() -> None:
    gone, tab = _Gone(), _Tab()
    sockets.socket_add(user_id="u", socket=gone)
    sockets.socket_add(user_id="u", socket=tab)
    try:
        assert await sockets.sockets_deliver(user_id="u", text="frame") == 1
        assert tab.frames == ["frame"]
        assert sockets._by_user["u"] == {tab}
    finally:
        sockets.socket_remove(user_id="u", socket=tab)
    assert sockets_count() == 0
