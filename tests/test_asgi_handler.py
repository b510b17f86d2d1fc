"""The ASGI handler runs a request's synchronous part in one hop, on long-lived threads
(vero/handler.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.deprecation import MiddlewareMixin
from pytest_django.fixtures import Settings as SettingsWrapper

from vero import handler
from vero.handler import VeroASGIHandler
from vero.http import EventStreamResponse


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip


async def _get(path: str) -> tuple[int, bytes]:
    communicator = ApplicationCommunicator(VeroASGIHandler(), _scope(path))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(5)
    return int(start["status"]), body


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_page_takes_one_hop_into_the_chain_and_none_per_middleware(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    middleware_hops: list[str] = []
    hops: list[str] = []
    original_acall = MiddlewareMixin.__acall__
    original_call = SyncToAsync.__call__

    async def counting_acall(self: MiddlewareMixin, request: Any) -> Any:
        middleware_hops.append(type(self).__name__)
        return await original_acall(self, request)

    async def counting_call(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(self.func, "__name__", repr(self.func)))
        return await original_call(self, *args, **kwargs)

    monkeypatch.setattr(MiddlewareMixin, "__acall__", counting_acall)
    monkeypatch.setattr(SyncToAsync, "__call__", counting_call)
    status, body = await _get("/")
    assert status == 200
    assert b"<html" in body
    # In Django's async chain, SessionMiddleware, CsrfViewMiddleware, GuestMiddleware, … each
    # ran their hooks through sync_to_async, and the view through one more.
    assert middleware_hops == []
    # Django's own handler also hops for the request_started receivers and for
    # response.close() (request_finished): here all of it is the one call.
    assert hops == ["_respond"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_requests_reuse_the_request_threads() -> None:
    names: list[str] = []

    def record(**kwargs: Any) -> None:
        names.append(threading.current_thread().name)

    signals.request_started.connect(record)
    try:
        for _ in range(20):
            status, _body = await _get("/healthz")
            assert status == 200
    finally:
        signals.request_started.disconnect(record)
    # Django's handler gives each request an executor, and so a thread, of its own.
    # (An executor may start a second thread when a request comes before its worker is idle.)
    assert len(names) == 20
    assert len(set(names)) <= 3
    assert all(name.startswith("vero-request") for name in names)


# -- streams (an answer's events): written as they come, closed when the client leaves ----------

_closed: list[str] = []


async def _ticks(count: int, then_wait: float) -> AsyncIterator[bytes]:
    try:
        for index in range(count):
            yield b"data: tick %d\n\n" % index
        await asyncio.sleep(then_wait)
        yield b"data: late\n\n"
    finally:
        _closed.append("generator")


def _ticking(request: HttpRequest) -> EventStreamResponse:
    return EventStreamResponse(_ticks(3, float(request.GET.get("wait", "0"))))


_release = threading.Event()


def _blocking(request: HttpRequest) -> HttpResponse:
    _release.wait(10)
    return HttpResponse("released")


urlpatterns = [path("ticks", _ticking), path("block", _blocking)]


async def _stream_start(
    path: str, query: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> ApplicationCommunicator:
    _closed.clear()
    scope = {**_scope(path), "query_string": query}
    scope["headers"] = scope["headers"] + (headers or [])
    communicator = ApplicationCommunicator(VeroASGIHandler(), scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream") in [
        (name.lower(), value) for name, value in start["headers"]
    ]
    return communicator


@pytest.mark.asyncio
@pytest.mark.urls("tests.test_asgi_handler")
@pytest.mark.django_db(transaction=True)
async def test_a_stream_is_written_part_by_part_then_closed() -> None:
    finished: list[bool] = []

    def record(**kwargs: Any) -> None:
        finished.append(True)

    signals.request_finished.connect(record)
    try:
        communicator = await _stream_start("/ticks", b"")
        bodies = [await communicator.receive_output(5) for _ in range(5)]
        await communicator.wait(5)
    finally:
        signals.request_finished.disconnect(record)
    # Each part is one body message, as the view yielded it.
    assert [m.get("body", b"") for m in bodies] == [
        b"data: tick 0\n\n",
        b"data: tick 1\n\n",
        b"data: tick 2\n\n",
        b"data: late\n\n",
        b"",
    ]
    assert [m.get("more_body", False) for m in bodies] == [True, True, True, True, False]
    assert _closed == ["generator"]
    assert finished == [True]


@pytest.mark.asyncio
@pytest.mark.urls("tests.test_asgi_handler")
@pytest.mark.django_db(transaction=True)
async def test_a_stream_stops_when_the_client_leaves() -> None:
    communicator = await _stream_start("/ticks", b"wait=60")
    for _ in range(3):
        assert (await communicator.receive_output(5))["body"].startswith(b"data: tick")
    await communicator.send_input({"type": "http.disconnect"})
    # The handler returns at once (not after the generator's 60 s) and closes the generator.
    await communicator.wait(5)
    assert _closed == ["generator"]


def test_a_stream_a_middleware_rewraps_is_written_through_django() -> None:
    response = EventStreamResponse(_ticks(1, 0))
    assert response.raw_chunks is not None
    response.streaming_content = [b"wrapped"]
    assert response.raw_chunks is None


@pytest.mark.asyncio
@pytest.mark.urls("tests.test_asgi_handler")
@pytest.mark.django_db(transaction=True)
async def test_event_streams_do_not_wait_behind_busy_request_threads(
    settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REQUEST_THREADS = 1
    monkeypatch.setattr(handler, "_executors", {})
    _release.clear()
    blocked = ApplicationCommunicator(VeroASGIHandler(), _scope("/block"))
    await blocked.send_input({"type": "http.request", "body": b"", "more_body": False})
    try:
        # The only request thread is taken: an EventSource's request is still answered.
        stream = await _stream_start("/ticks", b"", [(b"accept", b"text/event-stream")])
        assert (await stream.receive_output(5))["body"] == b"data: tick 0\n\n"
        await stream.wait(5)
        assert await blocked.receive_nothing(0.1)
    finally:
        _release.set()
    assert (await blocked.receive_output(5))["status"] == 200
    await blocked.wait(5)
    for executor in handler._executors.values():
        executor.shutdown(wait=False)
