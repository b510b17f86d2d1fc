"""A person's visits to the live server (tests/live_server.py) without a browser: cookies,
redirects and the CSRF token over real HTTP, and what the server printed (its console mail)."""

from __future__ import annotations

import http.cookiejar
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.live_server import LiveServer, live_server_start


@contextmanager
def watched_server(**extra_env: str) -> Iterator[LiveServer]:
    """A live server whose output (its log, its console mail) the test reads with `capfd`.

    Start it in the test body: started from a fixture, its output escapes `capfd`.
    """
    env = {"EMAIL_URL": "consolemail://", "APP_BASE_URL": "", **extra_env}
    server = live_server_start(extra_env=env)
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Page:
    status: int
    url: str
    text: str


class HttpSession:
    """One visitor: keeps cookies, follows redirects, sends the CSRF token as a form would."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str:
        return next(cookie.value or "" for cookie in self.cookies if cookie.name == name)

    def cookie_set(self, name: str, value: str) -> None:
        """Carry a cookie made elsewhere (e.g. the session of `Client.force_login`)."""
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        self.cookies.set_cookie(
            http.cookiejar.Cookie(
                version=0, name=name, value=value, port=None, port_specified=False,
                domain=host, domain_specified=False, domain_initial_dot=False, path="/",
                path_specified=True, secure=False, expires=None, discard=True, comment=None,
                comment_url=None, rest={},
            )
        )  # fmt: skip

    def get(self, url: str, headers: dict[str, str] | None = None) -> Page:
        request = urllib.request.Request(urllib.parse.urljoin(self.base_url, url))
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        return self._open(request)

    def post(self, url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Page:
        """Submit a form, with the CSRF token the server set in this visitor's cookie."""
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": self.cookie("csrftoken"), **fields})
        return self.post_raw(url, body.encode(), "application/x-www-form-urlencoded", headers)

    def post_raw(
        self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> Page:
        request = urllib.request.Request(
            urllib.parse.urljoin(self.base_url, url),
            data=body,
            headers={
                "Content-Type": content_type,
                "X-CSRFToken": self.cookie("csrftoken"),
                **(headers or {}),
            },
            method="POST",
        )
        return self._open(request)

    def htmx_post(self, url: str, fields: dict[str, str]) -> Page:
        """Post as the page's htmx does (static/js/requests.js): form data, `HX-Request` and
        the CSRF token read from the cookie at the time of the request."""
        return self.post(url, fields, {"HX-Request": "true"})

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self._opener.open(request, timeout=30) as response:
                return Page(response.status, response.url, response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return Page(error.code, error.url, error.read().decode(errors="replace"))


def console_link(capfd: pytest.CaptureFixture[str], fragment: str, timeout: float = 10) -> str:
    """Return the first link containing `fragment` that the server printed, as a person copies
    it: the whole space-delimited word on its line, nothing joined from the next line.

    The server must have been started inside the test (`watched_server`). Output read by an
    earlier call is not searched again.
    """
    deadline = time.monotonic() + timeout
    seen = ""
    while True:
        captured = capfd.readouterr()
        seen += captured.out + captured.err
        for word in seen.split():
            if fragment in word:
                return word
        if time.monotonic() > deadline:
            raise AssertionError(f"the server printed no link with {fragment!r}:\n{seen}")
        time.sleep(0.05)
