"""Under ASGI the middleware chain runs in sync mode, entered once (vero/middleware.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient
from django.utils.deprecation import MiddlewareMixin


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_no_middleware_hops_to_a_thread_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[str] = []
    original = MiddlewareMixin.__acall__

    async def counting(self: MiddlewareMixin, request: Any) -> Any:
        hops.append(type(self).__name__)
        return await original(self, request)

    monkeypatch.setattr(MiddlewareMixin, "__acall__", counting)
    response = await AsyncClient().get("/")
    assert response.status_code == 200
    # Without SyncChainMiddleware: SessionMiddleware, CsrfViewMiddleware, GuestMiddleware, …
    # each ran its hooks through sync_to_async.
    assert hops == []
