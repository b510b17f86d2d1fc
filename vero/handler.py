"""Django's ASGI handler, reduced to one thread hop per request, on long-lived threads.

Django's own handler costs a page several thread hops, and a new thread each:
- it builds the middleware chain in async mode, so each `MiddlewareMixin` (sessions, CSRF,
  auth, …) runs its hooks through `sync_to_async`, and a sync view is reached through one
  more `async_to_sync` and `sync_to_async` pair;
- the `request_started` receivers, the chain and `response.close()` (with `request_finished`)
  are separate hops;
- every request runs in a `ThreadSensitiveContext`, which gives the request an executor of its
  own: a thread is created, and torn down, for every request.

Here the chain is built as under WSGI, in sync mode, and everything synchronous about a request
(the start signal, the request object, the chain and view, and, for a complete response, its
closing with the finish signal) runs in one call on a fixed pool of `REQUEST_THREADS` threads.
The server's loop only reads the body and writes the response. A streaming response (an
answer's events) is written by the loop while the client is listening and closed in a second
hop once it ends.

An upload (`POST /attachments`) is refused with 413 when its declared length is over
ATTACHMENT_MAX_BYTES, before its body is read, and counted while it is read otherwise; its body
is the file the server hands over (`vero.body_limits`) or a spooled temporary file. A
`FileResponse` is written a chunk at a time: Django's handler reads a synchronous iterator whole
into memory first.

Requests for an event stream (`Accept: text/event-stream`, as every `EventSource` sends) have
threads of their own, so request threads held up by slow pages or a burst of sends do not
hold back a stream's start (the GIL is still shared by all of them).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, closing
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

from vero.body_limits import HandedOverBody, too_large_body, upload_limit

EVENT_STREAM_THREADS = 4  # their synchronous part is short: the middleware and a lookup

_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def _executor_for(scope: Any) -> ThreadPoolExecutor:
    kind = "request"
    for name, value in scope.get("headers", ()):
        if name.lower() == b"accept":
            if b"text/event-stream" in value:
                kind = "stream"
            break
    executor = _executors.get(kind)
    if executor is None:
        with _executors_lock:
            executor = _executors.get(kind)
            if executor is None:
                size = EVENT_STREAM_THREADS if kind == "stream" else settings.REQUEST_THREADS
                executor = _executors[kind] = ThreadPoolExecutor(
                    max_workers=size, thread_name_prefix=f"vero-{kind}"
                )
    return executor


class VeroASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        limit = upload_limit(scope["method"], scope["path"])
        try:
            if limit is None:
                body_file = await self.read_body(receive)
            elif _content_length(scope) > limit:
                # Refused before a byte of the body is read.
                await _too_large_send(send, limit)
                return
            else:
                upload_file = await self._upload_body_read(receive, limit)
                if upload_file is None:
                    await _too_large_send(send, limit)
                    return
                body_file = upload_file
        except RequestAborted:
            return
        executor = _executor_for(scope)
        with closing(body_file):
            respond = sync_to_async(self._respond, thread_sensitive=False, executor=executor)
            response = await respond(scope, body_file)
            if not response.streaming:
                await self.send_response(response, send)
                return
            try:
                await self._stream(response, receive, send)
            finally:
                await sync_to_async(response.close, thread_sensitive=False, executor=executor)()

    async def _file_send(self, response: FileResponse, send: Any) -> None:
        """Stream a file a chunk at a time: Django's handler would first read a synchronous
        iterator whole into memory (a 20 MB attachment, 20 MB of RSS)."""
        file = response.file_to_stream
        assert file is not None
        read = sync_to_async(file.read, thread_sensitive=False)
        await send(
            {"type": "http.response.start", "status": response.status_code,
             "headers": _headers(response)}
        )  # fmt: skip
        while chunk := await read(self.chunk_size):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body"})

    async def _upload_body_read(self, receive: Any, limit: int) -> IO[bytes] | None:
        """An upload's body as a file: the one the server wrote it to when it hands it over
        (`vero.body_limits`), else spooled to disk as it arrives; None once past `limit`."""
        body_file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115  (returned)
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
        )
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            chunk = message.get("body", b"")
            if isinstance(chunk, HandedOverBody):
                body_file.close()
                chunk.file.seek(0)
                return chunk.file
            size += len(chunk)
            if size > limit:
                body_file.close()
                return None
            if chunk:
                await sync_to_async(body_file.write, thread_sensitive=False)(chunk)
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        return body_file

    def _respond(self, scope: Any, body_file: Any) -> HttpResponseBase:
        """Everything synchronous about a request, in the request thread."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        assert response is not None
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            # Complete already: the finish signal (connections go back to the pool) need not
            # wait for the bytes to be written.
            response.close()
        return response

    async def _stream(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Write a streaming response until it ends or the client goes away."""
        writing = asyncio.ensure_future(self.send_response(response, send))
        listening = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((writing, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writing, listening):
                task.cancel()
            results = await asyncio.gather(writing, listening, return_exceptions=True)
        error = results[0]
        if isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError):
            raise error

    async def send_response(self, response: Any, send: Any) -> None:
        if not response.streaming:
            await super().send_response(response, send)
            return
        if isinstance(response, FileResponse) and hasattr(response, "file_to_stream"):
            await self._file_send(response, send)
            return
        chunks = getattr(response, "raw_chunks", None)
        if chunks is None:
            await super().send_response(response, send)
            return
        # Our own streams (`vero.http.EventStreamResponse`) already yield bytes of a sensible
        # size: no re-wrapping and re-chunking of each part.
        await send(
            {"type": "http.response.start", "status": response.status_code,
             "headers": _headers(response)}
        )  # fmt: skip
        async with aclosing(chunks) as content:
            async for chunk in content:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body"})


def _content_length(scope: Any) -> int:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _too_large_send(send: Any, limit: int) -> None:
    body = too_large_body(limit)
    await send(
        {"type": "http.response.start", "status": 413,
         "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                     (b"content-length", str(len(body)).encode())]}
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    headers = [
        (
            header.encode("ascii") if isinstance(header, str) else bytes(header),
            value.encode("latin1") if isinstance(value, str) else bytes(value),
        )
        for header, value in response.items()
    ]
    headers += [
        (b"Set-Cookie", c.OutputString().encode("ascii")) for c in response.cookies.values()
    ]
    return headers
