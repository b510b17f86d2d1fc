"""The WebSocket at /ws/: a tab hears that its user's data changed (docs/realtime.md).

A socket is authenticated by the session (an account) or the guest cookie (a guest), from the
scope Channels' auth middleware fills; `vero.asgi` checks the Origin against ALLOWED_HOSTS
before anything here runs. Refusals are closes with a code a tab can act on: 4401 (nobody:
do not retry until the page is reloaded), 4429 (too many connects: back off). The socket is
accepted first, so that the browser sees the code (a refused handshake shows none).

Frames, JSON text: the server sends `ready` once, `event` for each of the user's events and
`resync` when this process's listener reconnected; a tab sends `ping`, answered by `pong`.
Anything else a tab sends is ignored; a frame over `FRAME_MAX_BYTES` closes the socket with
4413 (as HTTP's 413: Daphne sends no close code but 1000 and 3000 to 4999).

A socket holds no channel-layer channel (`channel_layer_alias = None`): events reach it from
this process's listener (`realtime.listener`) through the registry (`realtime.sockets`), so
an idle socket costs only its connection (bench/bench_realtime.py measures it).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.selectors import socket_actor_id
from realtime.listener import listener_listening, listener_start
from realtime.sockets import socket_add, socket_remove

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY_CONNECTS = 4429
CLOSE_TOO_BIG = 4413
FRAME_MAX_BYTES = 4096
# How long a new socket waits for the listener before `ready` (so that `ready` means: events
# committed from now on reach this socket). If the listener is still down by then, the socket
# is ready anyway and resyncs when the listener connects.
LISTENER_WAIT_SECONDS = 3.0
READY_FRAME = '{"type":"ready"}'
PONG_FRAME = '{"type":"pong"}'


class ConnectLimit:
    """Connects counted per key (a user, or an address) in fixed one-minute windows, in this
    process.

    The whole table is dropped when a window ends, so it holds at most the keys of one minute.
    Per process on purpose: it guards each server against a tab stuck in a reconnect loop,
    and costs no query.
    """

    def __init__(self) -> None:
        self._window = 0
        self._counts: dict[str, int] = {}

    def allow(self, key: str) -> bool:
        """Whether `key` may connect now; counts the attempt when it may."""
        window = int(time.monotonic() // 60)
        if window != self._window:
            self._window = window
            self._counts = {}
        used = self._counts.get(key, 0)
        if used >= settings.SOCKET_CONNECTS_PER_MINUTE:
            return False
        self._counts[key] = used + 1
        return True

    def clear(self) -> None:
        self._counts = {}


user_connects = ConnectLimit()
refused_connects = ConnectLimit()


class EventsConsumer(AsyncWebsocketConsumer):
    """One tab's socket: its user's events, as frames."""

    # No channel-layer channel for this consumer (Channels' AsyncConsumer opens one on the
    # alias it names; no alias, no channel): events come from this process's listener.
    channel_layer_alias = None

    scope: dict[str, Any]
    user_id: str | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a thread hop) before every handler;
        # these handlers never touch the database.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is not None:
            await handler(message)

    async def connect(self) -> None:
        await self.accept()
        actor = socket_actor_id(self.scope)
        refusal = _refusal(actor, address=str((self.scope.get("client") or ["?"])[0]))
        if actor is None or refusal is not None:
            await self.close(code=refusal or CLOSE_UNAUTHENTICATED)
            return
        listener_start()
        await listener_listening(LISTENER_WAIT_SECONDS)
        self.user_id = str(actor)
        socket_add(user_id=self.user_id, socket=self)
        await self.frame_send(READY_FRAME)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self.user_id is not None:
            socket_remove(user_id=self.user_id, socket=self)
        raise StopConsumer

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            return
        if len(text_data) > FRAME_MAX_BYTES or len(text_data.encode()) > FRAME_MAX_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        if _frame_type(text_data) == "ping":
            await self.frame_send(PONG_FRAME)

    async def frame_send(self, text: str) -> None:
        """Send one text frame (the registry delivers events through this)."""
        await self.send(text_data=text)


def _refusal(actor: uuid.UUID | None, *, address: str) -> int | None:
    """The close code refusing this connect, or None to let it in: nobody behind it (4401, or
    4429 once the address was refused too often), too many connects from the user (4429).

    The address's budget applies to refused attempts only: behind a proxy many people share
    one address, and one of them looping without a cookie must not lock the others out.
    """
    if actor is None:
        return CLOSE_UNAUTHENTICATED if refused_connects.allow(address) else CLOSE_TOO_MANY_CONNECTS
    if not user_connects.allow(str(actor)):
        return CLOSE_TOO_MANY_CONNECTS
    return None


def _frame_type(text: str) -> object:
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return frame.get("type") if isinstance(frame, dict) else None
