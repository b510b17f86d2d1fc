"""A provider that redirects is refused, never followed (it could point at internal hosts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from models_registry.calls import CallTarget, ProviderBadRequestError
from models_registry.llm import llm_close, provider_ping, stream_collect, stream_completion


@pytest_asyncio.fixture
async def redirecting_server() -> AsyncIterator[tuple[TestServer, list[str]]]:
    followed: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/internal/secret")

    async def internal(request: web.Request) -> web.Response:
        followed.append(request.path)
        return web.json_response({"error": {"message": "internal data"}}, status=500)

    app = web.Application()
    app.router.add_route("*", "/v1/{tail:.*}", redirect)
    app.router.add_route("*", "/internal/{tail:.*}", internal)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, followed
    await server.close()


@pytest.mark.asyncio
async def test_a_redirecting_stream_is_refused_and_not_followed(
    redirecting_server: tuple[TestServer, list[str]],
) -> None:
    server, followed = redirecting_server
    target = CallTarget(
        model_id="custom:model",
        engine="openai_compatible",
        provider_slug="evil",
        provider_kind="custom",
        provider_model="model",
        api_base=str(server.make_url("/v1")),
        api_key=None,
    )
    try:
        with pytest.raises(ProviderBadRequestError, match="redirects are not followed"):
            await stream_collect(
                stream_completion(target=target, messages=[{"role": "user", "content": "hi"}])
            )
    finally:
        await llm_close()
    assert followed == []


@pytest.mark.asyncio
async def test_a_redirecting_connection_test_is_refused(
    redirecting_server: tuple[TestServer, list[str]],
) -> None:
    server, followed = redirecting_server
    with pytest.raises(ProviderBadRequestError, match="redirects are not followed"):
        await provider_ping(kind="custom", api_base=str(server.make_url("/v1")), api_key=None)
    assert followed == []
