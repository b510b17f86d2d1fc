"""`api.fetch` for sandboxed code, served by the server process (the sandbox has no network).

The model's code chooses the URL, so it goes through the same guard as a user's custom endpoint
(`byok.urlguard`): http(s) only, every address the host resolves to checked before the request
and again at connect time (`GuardedResolver`, no DNS cache), so private, loopback, link-local
and metadata addresses are refused even through a name that resolves to one. Redirects are
never followed: the code sees the 3xx and its `location`, and a second fetch to the target is
checked like any other. A response is read up to `SANDBOX_FETCH_BYTES` and no further, within
`SANDBOX_FETCH_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from byok.urlguard import UnsafeAddressError, UnsafeURLError, guard_policy, url_guard_check

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HEADER_LIMIT = 50
_CHUNK = 64 * 1024


class FetchRefusedError(Exception):
    """A fetch the sandbox's code may not make, or that failed; the message is for the code."""


class SandboxFetcher:
    """The fetches of one run: one guarded session, a count, and the limits of the run."""

    def __init__(self, *, max_fetches: int, max_bytes: int, timeout_seconds: float) -> None:
        self.max_fetches = max_fetches
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        self.count = 0
        self._session: aiohttp.ClientSession | None = None

    def _guarded_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No DNS cache: each connection checks the addresses it really gets.
            connector = aiohttp.TCPConnector(
                resolver=guard_policy().resolver(), use_dns_cache=False, limit=4
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, request: Any) -> dict[str, Any]:
        """Answer one request of the code: a response, or `{"ok": false, "error": why}`."""
        try:
            return await self._fetch(request)
        except FetchRefusedError as error:
            return {"ok": False, "error": str(error)}

    async def _fetch(self, request: Any) -> dict[str, Any]:
        self.count += 1
        if self.count > self.max_fetches:
            raise FetchRefusedError(f"at most {self.max_fetches} fetches per run")
        url, method, headers, body = _request_checked(request, max_bytes=self.max_bytes)
        try:
            # The check resolves the host (blocking): in a thread, never on the loop.
            await asyncio.to_thread(url_guard_check, url)
        except UnsafeURLError as error:
            raise FetchRefusedError(error.message) from error
        try:
            async with self._guarded_session().request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
            ) as response:
                content = await _read_capped(response, max_bytes=self.max_bytes)
                return {
                    "ok": True,
                    "status": response.status,
                    "statusText": response.reason or "",
                    "headers": {name.lower(): value for name, value in response.headers.items()},
                    "url": str(response.url),
                    "body": content.decode(response.get_encoding(), errors="replace")
                    if content
                    else "",
                }
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, UnsafeAddressError):
                raise FetchRefusedError(str(error.os_error)) from error
            raise FetchRefusedError(f"{url} cannot be reached.") from error
        except TimeoutError as error:
            raise FetchRefusedError(
                f"{url} did not answer within {self.timeout_seconds:g} seconds."
            ) from error
        except (aiohttp.ClientError, LookupError, ValueError) as error:
            raise FetchRefusedError(f"The request to {url} failed: {error}") from error


def _request_checked(request: Any, *, max_bytes: int) -> tuple[str, str, dict[str, str], bytes]:
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise FetchRefusedError("the request must have a url")
    method = str(request.get("method") or "GET").upper()
    if method not in METHODS:
        raise FetchRefusedError(f"the method {method} is not allowed")
    headers = request.get("headers") or {}
    if not isinstance(headers, dict) or len(headers) > _HEADER_LIMIT:
        raise FetchRefusedError(f"headers must be an object of at most {_HEADER_LIMIT}")
    checked = {str(name): str(value) for name, value in headers.items()}
    if any("\r" in text or "\n" in text for item in checked.items() for text in item):
        raise FetchRefusedError("a header may not contain a line break")
    body = request.get("body")
    data = b"" if body is None else str(body).encode()
    if len(data) > max_bytes:
        raise FetchRefusedError(f"the request body is larger than {max_bytes} bytes")
    return request["url"], method, checked, data


async def _read_capped(response: aiohttp.ClientResponse, *, max_bytes: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise FetchRefusedError(f"the response is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise FetchRefusedError(f"the response is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
