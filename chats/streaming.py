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

from chats import relay
from chats.generation import StreamEvent, live_answer_get
from chats.models import Message
from chats.selectors import chat_get_for_request, message_get_for_chat
from vero.http import VeroRequest
from vero.lib.db import connection_release

KEEPALIVE_SECONDS = 15.0
# A stream writes at most this often: deltas that arrive meanwhile go out together in one
# write (each still its own event), which halves the writes at 50 tokens/s. The first delta
# after a quiet spell goes out at once.
FLUSH_SECONDS = 0.04


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
        chat = chat_get_for_request(request, chat_id=chat_id)
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
        loop = asyncio.get_running_loop()
        written = 0.0
        try:
            batch = backlog
            while True:
                if batch:
                    # Whatever accumulated goes out in one write.
                    yield b"".join(_sse(event) for event in batch)
                    if batch[-1].kind == "done":
                        return
                    written = loop.time()
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        await follower.ready.wait()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                wait = written + FLUSH_SECONDS - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                batch = live.take(follower)
        finally:
            live.unfollow(follower)

    return events()


async def _events(message_id: uuid.UUID, streaming: bool, after: int) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    if streaming:
        local = await _local(message_id, after)
        if local is not None:
            async for chunk in local:
                yield chunk
            return
        if relay.enabled():
            async for event in relay.remote_follow(message_id=message_id, after=after):
                if event is None:
                    yield b": keep-alive\n\n"
                    continue
                yield _sse(event)
                if event.kind == "done":
                    return
    # Finished (or nobody generates it any more): the database has the last word.
    message = await sync_to_async(_final_state)(message_id)
    yield _done_from_database(message)


def _requester_id(request: VeroRequest) -> uuid.UUID | None:
    """Who asks, from what the middleware already read (the session, or the guest cookie)."""
    if request.user.is_authenticated:
        return request.user.id
    return request.guest.id if request.guest is not None else None


@require_GET
def message_stream(
    request: HttpRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> StreamingHttpResponse:
    """A sync view (it runs in the middleware chain's thread, no hop of its own) returning an
    async stream, which the server's loop then writes."""
    live = live_answer_get(message_id)
    if (
        live is not None and live.chat_id == chat_id and live.user_id == _requester_id(request)  # type: ignore[arg-type]
    ):
        # Generated here for this very user: following it needs no database at all.
        streaming = True
    else:  # 404 for someone else's chat or message
        message = _lookup(request, chat_id, message_id)  # type: ignore[arg-type]
        streaming = message.status == Message.Status.STREAMING
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    after = int(raw) if raw.isdigit() else 0
    response = StreamingHttpResponse(
        _events(message_id, streaming, after), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
