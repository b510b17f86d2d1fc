"""A guest's answers over HTTP, and the same answers from the provider directly.

Why: the streaming benches time an answer as a browser sees it (the htmx send, then the SSE
stream to its `done` event) and compare it with calling the fake provider through the lean
engine the server uses (`models_registry.llm.stream_completion`), so a figure is what the
server adds. Both sides record their chunks' arrival the same way, in a `Stream`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

MODEL = "fake:fake-model"
STREAM_URL = re.compile(r'data-stream-url="(/c/[0-9a-f-]+/m/([0-9a-f-]+)/stream)"')
# The tree version a page shows and posts with every change (chat.js), from a page or from a
# send's out-of-band update.
VERSION = re.compile(r'name="version" value="(\d*)"')


@dataclass
class Stream:
    started: float
    sent: float = 0.0  # when the send's response arrived
    first: float | None = None
    times: list[float] = field(default_factory=list)
    ended: float = 0.0
    status: str = ""
    error: str = ""
    answer_id: str = ""
    chat_id: str = ""

    @property
    def ttft(self) -> float:
        assert self.first is not None, "no content arrived"
        return self.first - self.started

    @property
    def max_gap(self) -> float:
        return max((b - a for a, b in zip(self.times, self.times[1:], strict=False)), default=0.0)


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str
    csrf: str
    # The tree version the client's "page" of each chat shows, as a tab keeps it: from each
    # send's answer, or given by the bench for the chats it built (as if their pages were open).
    versions: dict[str, str] = field(default_factory=dict)

    async def send(self, chat_id: str, parent_id: str | None, text: str = "hi") -> tuple[str, str]:
        """Send as htmx does, with the version the page shows; no chat_id: a new chat's.
        Returns the stream's path and the answer's id."""
        data = {"text": text, "model": MODEL}
        if parent_id is not None:
            data["parent"] = parent_id
        if chat_id:
            data["version"] = self.versions.get(chat_id, "")
        headers = {"X-CSRFToken": self.csrf, "HX-Request": "true"}
        url = f"{self.base}/c/{chat_id}/send" if chat_id else f"{self.base}/c/send"
        async with self.http.post(url, data=data, headers=headers) as response:
            body = await response.text()
            if response.status != 200:
                raise RuntimeError(f"send answered {response.status}: {body[:300]}")
        found = STREAM_URL.search(body)
        if found is None:
            raise RuntimeError("no stream URL in the send response")
        version = VERSION.search(body)
        if version is not None:
            self.versions[found.group(1).split("/")[2]] = version.group(1)
        return found.group(1), found.group(2)

    async def answer(self, chat_id: str, parent_id: str | None) -> Stream:
        """Send, then follow the answer's SSE stream to its `done` event."""
        stream = Stream(started=time.perf_counter())
        path, stream.answer_id = await self.send(chat_id, parent_id)
        stream.sent = time.perf_counter()
        stream.chat_id = path.split("/")[2]
        # As a browser's EventSource asks for it.
        headers = {"Accept": "text/event-stream"}
        async with self.http.get(f"{self.base}{path}?after=0", headers=headers) as response:
            buffer = b""
            async for chunk in response.content.iter_any():
                now = time.perf_counter()
                buffer += chunk
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    if b"event: text\n" in event:
                        if stream.first is None:
                            stream.first = now
                        stream.times.append(now)
                    elif b"event: done\n" in event:
                        data = event.split(b"\ndata: ", 1)[1]
                        done = orjson.loads(data)
                        stream.status = done.get("status", "?")
                        stream.error = done.get("error", "")
        stream.ended = time.perf_counter()
        return stream


async def guest_client(http: aiohttp.ClientSession, base: str) -> Client:
    """A guest of the server at `base`: its home page visited, the CSRF cookie in `http`'s
    jar (which must accept cookies of an IP address: `CookieJar(unsafe=True)`)."""
    async with http.get(f"{base}/") as response:
        if response.status != 200:
            raise RuntimeError(f"GET / answered {response.status}")
    jar = http.cookie_jar
    csrf = next((cookie.value for cookie in jar if cookie.key == "csrftoken"), None)
    if csrf is None:  # not every page sets it: any well-formed secret works
        csrf = secrets.token_hex(16)
        jar.update_cookies({"csrftoken": csrf})
    return Client(http=http, base=base, csrf=csrf)


async def direct_answer(target: Any, messages: Sequence[dict[str, str]]) -> Stream:
    """The same answer from the provider through the server's lean engine, no server."""
    from models_registry.calls import TextDelta
    from models_registry.llm import stream_completion

    stream = Stream(started=time.perf_counter())
    async for delta in stream_completion(target=target, messages=messages, max_tokens=4096):
        if isinstance(delta, TextDelta):
            now = time.perf_counter()
            if stream.first is None:
                stream.first = now
            stream.times.append(now)
    stream.ended = time.perf_counter()
    stream.status = "complete"
    return stream
