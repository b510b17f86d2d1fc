"""This process's open sockets, by user: where the listener delivers a user's events.

The listener (`realtime.listener`) and the consumers (`realtime.consumers`) run on the
server's event loop, so the registry needs no lock. Each socket is sent its frames directly:
there is no channel layer in between, since with one a socket would cost a Redis channel (a
reader polling it, its buffers) and every process would receive every event.
"""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger(__name__)


class Socket(Protocol):
    """An open socket the registry can send a text frame to."""

    async def frame_send(self, text: str) -> None: ...


_by_user: dict[str, set[Socket]] = {}


def socket_add(*, user_id: str, socket: Socket) -> None:
    """Deliver `user_id`'s events to `socket` from now on."""
    _by_user.setdefault(user_id, set()).add(socket)


def socket_remove(*, user_id: str, socket: Socket) -> None:
    """Stop delivering to `socket` (it closed); nothing when it was not registered."""
    sockets = _by_user.get(user_id)
    if sockets is None:
        return
    sockets.discard(socket)
    if not sockets:
        del _by_user[user_id]


def sockets_count() -> int:
    """How many sockets this process delivers to."""
    return sum(len(sockets) for sockets in _by_user.values())


async def sockets_deliver(*, user_id: str, text: str) -> int:
    """Send `text` to each of `user_id`'s sockets here; return how many it reached.

    A socket whose send fails is gone (its disconnect may not have reached us yet): it is
    dropped, and the others still get the frame.
    """
    sockets = _by_user.get(user_id)
    if not sockets:
        return 0
    return await _send_each(user_id, list(sockets), text)


async def sockets_broadcast(text: str) -> int:
    """Send `text` to every socket of this process (a resync after the listener reconnected)."""
    reached = 0
    for user_id, sockets in list(_by_user.items()):
        reached += await _send_each(user_id, list(sockets), text)
    return reached


async def _send_each(user_id: str, sockets: list[Socket], text: str) -> int:
    reached = 0
    for socket in sockets:
        try:
            await socket.frame_send(text)
        except Exception:
            logger.info("dropped a socket of user %s whose send failed", user_id, exc_info=True)
            socket_remove(user_id=user_id, socket=socket)
        else:
            reached += 1
    return reached
