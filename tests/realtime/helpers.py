"""Sockets opened on the real ASGI application (`vero.asgi.application`), as a tab opens them."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

from accounts.guests import guest_token_issue
from accounts.models import User
from realtime.events import EventKind, publish
from realtime.origin import origin_reset, origin_set
from vero.asgi import application

ORIGIN = "http://localhost:8000"


def session_cookie(user: User) -> str:
    """The session cookie of `user` logged in, as their browser holds it."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def guest_cookie(guest_id: uuid.UUID) -> str:
    return guest_token_issue(guest_id=guest_id)


def socket(
    *,
    session: str | None = None,
    guest: str | None = None,
    origin: str | None = ORIGIN,
    address: str = "127.0.0.1",
) -> WebsocketCommunicator:
    """A tab's socket to /ws/ with these cookies and Origin, from `address`."""
    headers = [(b"host", b"localhost:8000")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    cookies = []
    if session is not None:
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session}")
    if guest is not None:
        cookies.append(f"{settings.GUEST_COOKIE_NAME}={guest}")
    if cookies:
        headers.append((b"cookie", "; ".join(cookies).encode()))
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
    # Read by the app when it starts, which is on the next turn of the loop.
    communicator.scope["client"] = [address, 50000]
    return communicator


async def frame(communicator: WebsocketCommunicator, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame the server sent, decoded."""
    return dict(orjson.loads(await communicator.receive_from(timeout)))


async def opened(communicator: WebsocketCommunicator) -> WebsocketCommunicator:
    """Connect and read the `ready` frame."""
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert await frame(communicator) == {"type": "ready"}
    return communicator


async def close_code(communicator: WebsocketCommunicator) -> int | None:
    """How the server ended the connect: its close code (None: a refused handshake)."""
    connected, _ = await communicator.connect(timeout=5)
    if not connected:
        return None
    message = await communicator.receive_output(5)
    assert message["type"] == "websocket.close", message
    return int(message["code"])


def publish_in_atomic(
    user_id: uuid.UUID,
    kind: EventKind,
    chat_id: uuid.UUID,
    rollback: bool,
    origin: str | None = None,
) -> None:
    """Publish one event as a service does, inside `transaction.atomic()`, for a request of
    the tab `origin`; rolled back when `rollback`. Closes its connection (it runs in a thread
    of its own)."""
    token = origin_set(origin)
    try:
        with transaction.atomic():
            publish(user_id=user_id, kind=kind, chat_id=chat_id)
            if rollback:
                raise _RolledBack
    except _RolledBack:
        pass
    finally:
        origin_reset(token)
        connection.close()


class _RolledBack(Exception):
    pass


async def event_publish(
    user_id: uuid.UUID,
    *,
    kind: EventKind = "chat.updated",
    chat_id: uuid.UUID | None = None,
    rollback: bool = False,
    origin: str | None = None,
) -> uuid.UUID:
    """Publish an event as a service does (inside `transaction.atomic()`), committed or rolled
    back; returns the chat id it names."""
    chat_id = chat_id or uuid.uuid4()
    await sync_to_async(publish_in_atomic)(user_id, kind, chat_id, rollback, origin)
    return chat_id
