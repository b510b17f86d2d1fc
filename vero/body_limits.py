"""Upload bodies under Daphne: refused before they are read, handed over without a copy.

Twisted reads a whole request body before Daphne hands the request to the application, and
Daphne then queues the body in chunks, all at once, in memory. For `POST /attachments` that
would mean reading a body we are going to refuse, and holding a 25 MB upload in memory.
`daphne_install` replaces Daphne's request class with one that, for that route only:
- answers 413 as soon as the headers say the body is over ATTACHMENT_MAX_BYTES, and closes
  the connection without reading the body; a body without a length (chunked) is counted as
  it arrives and refused as soon as it passes the limit;
- hands the temporary file Twisted wrote the body to over to the application
  (`HandedOverBody`, read by `vero.handler`), instead of queueing its bytes.
"""

from __future__ import annotations

import io
from typing import IO, Any

import orjson

UPLOAD_PATH = b"/attachments"


class HandedOverBody(bytes):
    """An empty body chunk that carries the file holding the whole body."""

    file: IO[bytes]


def upload_limit(method: bytes | str, path: bytes | str) -> int | None:
    """ATTACHMENT_MAX_BYTES for an upload request, None for any other."""
    from django.conf import settings

    method = method.encode() if isinstance(method, str) else method
    path = path.encode() if isinstance(path, str) else path
    if method != b"POST" or path.split(b"?", 1)[0] != UPLOAD_PATH:
        return None
    return int(settings.ATTACHMENT_MAX_BYTES)


def too_large_body(limit: int) -> bytes:
    return orjson.dumps({"error": f"A file may be {limit // (1024 * 1024)} MB at most."})


class _Handoff:
    """Stands in for the request's content in Daphne's queueing loop: one read, one chunk."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.closed = False

    def seek(self, *args: Any) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        chunk = HandedOverBody()
        chunk.file = self.file
        return chunk

    def close(self) -> None:
        self.closed = True  # the application closes the file once the response is written


def daphne_install() -> None:
    """Make Daphne build its HTTP requests from `UploadLimitedRequest` (idempotent)."""
    from daphne import http_protocol

    if getattr(http_protocol.WebRequest, "vero_upload_limited", False):
        return

    class UploadLimitedRequest(http_protocol.WebRequest):
        vero_upload_limited = True
        content: Any  # Twisted's: a file, None before the length is known; ours: _Handoff
        _limit: int | None = None
        _received = 0
        _refused = False

        def gotLength(self, length: int | None) -> None:
            self._limit = upload_limit(self.channel._command, self.channel._path)
            if self._limit is not None and length is not None and length > self._limit:
                self._refuse()
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:
            if self._refused:
                return
            self._received += len(data)
            if self._limit is not None and self._received > self._limit:
                self._refuse()
                return
            super().handleContentChunk(data)

        def process(self) -> Any:
            if self._refused:
                return None
            content = getattr(self, "content", None)
            if self._limit is not None and content is not None:
                content.seek(0)
                self.content = _Handoff(content)
            return super().process()

        def _refuse(self) -> None:
            self._refused = True
            if getattr(self, "content", None) is None:
                self.content = io.BytesIO()
            # Twisted would answer "100 Continue" after these headers: not for a refusal.
            self.requestHeaders.removeHeader(b"Expect")
            body = too_large_body(self._limit or 0)
            self.channel.transport.write(
                b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            self.channel.loseConnection()

    http_protocol.WebRequest = UploadLimitedRequest
