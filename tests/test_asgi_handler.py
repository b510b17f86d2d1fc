"""The ASGI handler runs the middleware chain in sync mode, entered once (vero/handler.py)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from asgiref.testing import ApplicationCommunicator
from django.utils.deprecation import MiddlewareMixin

from vero.handler import VeroASGIHandler


async def _get(path: str) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    communicator = ApplicationCommunicator(VeroASGIHandler(), scope)
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
    assert hops.count("_middleware_chain") + hops.count("inner") <= 1
    assert len(hops) <= 3  # the chain, and the request_started/finished signal receivers
