"""Server-sent events for one answer: what was missed, then each delta as it comes.

The client names the last event it has (`Last-Event-ID`, or `?after=` on first connect: the
`stream_seq` of the content the page rendered), so a reload or a reconnect continues with no
gap and no duplicate. Each event carries a delta, never the whole message again.

Every stream writes something at least every `STREAM_KEEPALIVE_SECONDS` (a comment when there
is no news). A stream ends with a `done` event carrying the answer's state: final, or
`streaming` when this stream cannot follow it any more (Redis failed, or nobody answered
yet), from which the client reconnects. An answer whose generating process is gone is settled
as `interrupted` by the first reader that finds it (`answer_orphaned`), not left for the
reaper.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson
from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.views.decorators.http import require_GET

from chats import relay
from chats.answer_services import message_interrupt_orphan
from chats.live import LiveAnswer, StreamEvent, live_answer_get
from chats.models import Message
from chats.parts import text_parts_html
from chats.reaper import answer_orphaned
from chats.selectors import chat_get_for_request, message_get_for_chat
from vero.http import EventStreamResponse, VeroRequest
from vero.lib.db import connection_release

RETRY = b"retry: 1000\n\n"
KEEP_ALIVE = b": keep-alive\n\n"


def _sse(event: StreamEvent) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.seq,
        event.kind.encode(),
        orjson.dumps(event.data),
    )


def _done_from_database(message: Message) -> bytes:
    data = {
        "status": message.status,
        "error": message.error,
        "html": message.html,
        "parts_html": text_parts_html(message.parts),
    }
    return _sse(StreamEvent(seq=message.stream_seq, kind="done", data=data))


def _lookup(request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    try:
        chat = chat_get_for_request(request, chat_id=chat_id)
        return message_get_for_chat(chat=chat, message_id=message_id)
    finally:
        # A stream may stay open for minutes: it must not keep this request's connection.
        connection_release()


def _message_read(message_id: uuid.UUID) -> Message:
    try:
        return Message.objects.get(id=message_id)
    finally:
        connection_release()


def _interrupt_and_read(message_id: uuid.UUID) -> Message:
    try:
        message_interrupt_orphan(message_id=message_id)
        return Message.objects.get(id=message_id)
    finally:
        connection_release()


async def _settled(message: Message) -> Message:
    """`message`, settled as `interrupted` first when nobody generates it any more."""
    if await answer_orphaned(message=message):
        return await sync_to_async(_interrupt_and_read)(message.id)
    return message


async def _local(live: LiveAnswer, after: int) -> AsyncIterator[bytes]:
    """The events of an answer generated in this process, straight from memory."""
    backlog, follower = live.follow(after=after)
    try:
        batch = backlog
        head = RETRY
        while True:
            if batch:
                # Whatever accumulated goes out in one write.
                yield head + b"".join(_sse(event) for event in batch)
                if batch[-1].kind == "done":
                    return
            else:
                yield head or KEEP_ALIVE
            head = b""
            await follower.wait()
            batch = live.take(follower)
    finally:
        live.unfollow(follower)


async def _events(message: Message, after: int) -> AsyncIterator[bytes]:
    yield RETRY
    message = await _settled(message)
    if message.status == Message.Status.STREAMING and relay.enabled():
        events = relay.remote_follow(
            message_id=message.id, after=after, generator=message.generator
        )
        async for event in events:
            if event is None:
                yield KEEP_ALIVE
                continue
            yield _sse(event)
            if event.kind == "done":
                return
        message = await sync_to_async(_message_read)(message.id)
        message = await _settled(message)
    # Finished, nobody generates it any more, or it cannot be followed from here now: the
    # database has the last word.
    yield _done_from_database(message)


def _requester_id(request: VeroRequest) -> uuid.UUID | None:
    """Who asks, from what the middleware already read (the session, or the guest cookie)."""
    if request.user.is_authenticated:
        return request.user.id
    return request.guest.id if request.guest is not None else None


@require_GET
def message_stream(
    request: HttpRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> EventStreamResponse:
    """A sync view (it runs in the middleware chain's thread, no hop of its own) returning an
    async stream, which the server's loop then writes."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    after = int(raw) if raw.isdigit() else 0
    live = live_answer_get(message_id)
    if (
        live is not None and live.chat_id == chat_id and live.user_id == _requester_id(request)  # type: ignore[arg-type]
    ):
        # Generated here for this very user: following it needs no database at all.
        return EventStreamResponse(_local(live, after))
    message = _lookup(request, chat_id, message_id)  # type: ignore[arg-type]  # 404 if not theirs
    streaming = message.status == Message.Status.STREAMING
    live = live_answer_get(message_id) if streaming else None
    if live is not None:
        return EventStreamResponse(_local(live, after))
    return EventStreamResponse(_events(message, after))
