"""Server-sent events for one answer: what was missed, then each delta as it comes.

The client names the last event it has (`Last-Event-ID`, or `?after=` on first connect: the
`stream_seq` of the content the page rendered), so a reload or a reconnect continues with no
gap and no duplicate. Each event carries a delta, never the whole message again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import orjson
from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from accounts.services import actor_get
from chats import relay
from chats.generation import StreamEvent, live_answer_get
from chats.models import Message
from chats.selectors import chat_get_for_user, message_get_for_chat
from vero.http import VeroRequest
from vero.lib.db import connection_release

KEEPALIVE_SECONDS = 15.0


def _sse(event: StreamEvent) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.seq,
        event.kind.encode(),
        orjson.dumps(event.data),
    )


def _done_from_database(message: Message) -> bytes:
    data = {"status": message.status, "error": message.error, "html": message.html}
    return _sse(StreamEvent(seq=message.stream_seq, kind="done", data=data))


def _lookup(request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    try:
        chat = chat_get_for_user(user=actor_get(request), chat_id=chat_id)
        return message_get_for_chat(chat=chat, message_id=message_id)
    finally:
        # A stream may stay open for minutes: it must not keep this request's connection.
        connection_release()


def _final_state(message_id: uuid.UUID) -> Message:
    try:
        return Message.objects.get(id=message_id)
    finally:
        connection_release()


async def _local(live_message_id: uuid.UUID, after: int) -> AsyncIterator[bytes] | None:
    live = live_answer_get(live_message_id)
    if live is None:
        return None
    backlog, follower = live.follow(after=after)

    async def events() -> AsyncIterator[bytes]:
        try:
            batch = backlog
            while True:
                if batch:
                    # Whatever accumulated goes out in one write.
                    yield b"".join(_sse(event) for event in batch)
                    if batch[-1].kind == "done":
                        return
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        await follower.ready.wait()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                batch = live.take(follower)
        finally:
            live.unfollow(follower)

    return events()


async def _events(message: Message, after: int) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    if message.status == Message.Status.STREAMING:
        local = await _local(message.id, after)
        if local is not None:
            async for chunk in local:
                yield chunk
            return
        if relay.enabled():
            async for event in relay.remote_follow(message_id=message.id, after=after):
                if event is None:
                    yield b": keep-alive\n\n"
                    continue
                yield _sse(event)
                if event.kind == "done":
                    return
    # Finished (or nobody generates it any more): the database has the last word.
    message = await sync_to_async(_final_state)(message.id)
    yield _done_from_database(message)


@require_GET
async def message_stream(
    request: HttpRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> StreamingHttpResponse:
    message = await sync_to_async(_lookup)(request, chat_id, message_id)  # type: ignore[arg-type]
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    after = int(raw) if raw.isdigit() else 0
    response = StreamingHttpResponse(_events(message, after), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
