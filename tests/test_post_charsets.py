"""A form body declared in another charset than UTF-8 gets a plain 400 on every route.

Django refuses such a body on each read of `request.POST`; its error handlers read it again, so
every POST used to end in a 500 with a traceback. The routes are generated from the URL conf, so
a new route is covered without touching this file.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils.regex_helper import normalize

from accounts.models import User
from tests.live_http import HttpSession, watched_server

CHARSETS = ["utf-16", "latin-1"]
# Values tried for each URL argument, in order, until the route's pattern accepts them.
_ARGUMENT_SAMPLES = ("1", str(uuid.UUID(int=1)), "x1", "accounts")


def _piece(pattern: URLPattern | URLResolver) -> str:
    """Return a piece of path that this one level of the URL conf accepts."""
    regex = pattern.pattern.regex
    template, names = normalize(regex.pattern)[0]
    for values in itertools.product(_ARGUMENT_SAMPLES, repeat=len(names)):
        piece = template % dict(zip(names, values, strict=True))
        if regex.fullmatch(piece):
            return piece
    raise AssertionError(f"no sample value fits {regex.pattern!r}: add one to _ARGUMENT_SAMPLES")


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: str = "", chain: tuple[URLResolver, ...] = ()
) -> Iterator[str]:
    for pattern in patterns:
        path = prefix + _piece(pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, path, (*chain, pattern))
            continue
        # The sample path must reach this very route, unless an earlier route of the same
        # path replaces it (e.g. accounts.urls' /accounts/email/ in place of allauth's).
        match = resolve("/" + path)
        levels: list[URLPattern | URLResolver] = [*chain, pattern]
        route = "".join(str(level.pattern) for level in levels)
        reached = match.tried is not None and list(match.tried[-1]) == levels
        assert reached or match.route == route, path
        if reached:
            yield "/" + path


def every_route() -> list[str]:
    """One path for every route of the URL conf (Vero's, allauth's and the admin's)."""
    return list(_walk(get_resolver().url_patterns))


def _form(csrf_token: str) -> str:
    return f"csrfmiddlewaretoken={csrf_token}&name=Zoë&email=zoë@example.com"


def _errors(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR or r.exc_info]


def _visitor(user: User | None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.get("/")  # the CSRF cookie, as a browser gets it
    return client


def test_the_url_conf_walk_reaches_the_routes_that_take_forms() -> None:
    routes = every_route()
    assert len(routes) > 100
    for path in ("/accounts/login/", "/accounts/email/", "/settings/", "/c/send", "/admin/login/"):
        assert path in routes


@pytest.mark.django_db
@pytest.mark.parametrize("charset", CHARSETS)
def test_every_route_answers_400_to_a_form_in_another_charset(
    charset: str, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    users_before = User.objects.count()
    refused_otherwise = []
    for visitor in (_visitor(None), _visitor(alice)):
        token = visitor.cookies["csrftoken"].value
        for path in every_route():
            # The test client encodes the text in the charset the content type declares.
            response = visitor.post(
                path,
                _form(token),
                content_type=f"application/x-www-form-urlencoded; charset={charset}",
                headers={"X-CSRFToken": token},
            )
            if response.status_code != 400 or b"UTF-8" not in response.content:
                refused_otherwise.append((path, response.status_code))
    assert refused_otherwise == []
    assert _errors(caplog.records) == []
    # Nothing was written: no guest row, alice's preferences untouched.
    assert User.objects.count() == users_before
    alice.refresh_from_db()
    assert alice.name == "Alice"


@pytest.mark.django_db
def test_a_utf8_form_is_still_read(alice: User) -> None:
    visitor = _visitor(alice)
    token = visitor.cookies["csrftoken"].value
    response = visitor.post(
        "/settings/",
        "name=Zoë&occupation=&custom_instructions=".encode(),
        content_type="application/x-www-form-urlencoded; charset=UTF-8",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.name == "Zoë"


@pytest.mark.django_db(transaction=True)
def test_the_server_answers_400_on_every_route_and_logs_no_error(
    alice: User, capfd: pytest.CaptureFixture[str]
) -> None:
    with watched_server() as server:
        logged_in = HttpSession(server.url)
        session = Client()
        session.force_login(alice)
        logged_in.cookie_set("sessionid", session.cookies["sessionid"].value)
        for visitor in (HttpSession(server.url), logged_in):
            assert visitor.get("/").status == 200
            for charset, path in itertools.product(CHARSETS, every_route()):
                token = visitor.cookie("csrftoken")
                page = visitor.post_raw(
                    path,
                    _form(token).encode(charset),
                    f"application/x-www-form-urlencoded; charset={charset}",
                )
                # At the first failure: a 500 costs the server a traceback each.
                assert (page.status, "UTF-8" in page.text) == (400, True), (charset, path)
    output = capfd.readouterr()
    printed = output.out + output.err
    assert "Traceback" not in printed
    assert " ERROR " not in printed
    assert "Bad Request: /accounts/login/" in printed  # the server's log was captured
