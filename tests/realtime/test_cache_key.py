"""POST /api/cache/key: the session's AES-256 key for the browser cache, never stored anywhere.

The derivation is checked against a vector computed outside Vero (cache_key_vector.json, which
the browser tests read too) and, on the endpoint, against HKDF written out here from RFC 5869
with the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.test import Client

from accounts.guests import guest_token_issue
from accounts.models import User
from realtime.keys import CACHE_KEY_INFO, base64url, cache_key_derive
from tests.helpers import PASSWORD, client_for_guest

pytestmark = pytest.mark.django_db

URL = "/api/cache/key"
VECTOR = orjson.loads((Path(__file__).parent / "cache_key_vector.json").read_bytes())


def rfc5869(*, ikm: bytes, salt: bytes, info: bytes) -> str:
    """HKDF-SHA256 for 32 bytes, written out: extract, then one expand block."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(okm).rstrip(b"=").decode()


def key_of(client: Client) -> str:
    response = client.post(URL)
    assert response.status_code == 200, response.content
    return str(orjson.loads(response.content)["key"])


def test_the_derivation_matches_the_shared_vector(settings: Any) -> None:
    settings.CACHE_ENCRYPTION_SECRET = VECTOR["salt"]

    key = cache_key_derive(session_id=VECTOR["ikm"])

    assert CACHE_KEY_INFO.decode() == VECTOR["info"]
    assert base64url(key) == VECTOR["key"]
    assert len(key) == 32


def test_an_account_gets_the_key_of_its_session_never_cached(alice: User, settings: Any) -> None:
    settings.CACHE_ENCRYPTION_SECRET = "a secret of this install"
    client = Client()
    assert client.login(email=alice.email, password=PASSWORD)

    response = client.post(URL)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    session_key = client.session.session_key
    assert session_key
    expected = rfc5869(
        ikm=session_key.encode(), salt=b"a secret of this install", info=b"vero-cache-v1"
    )
    assert orjson.loads(response.content) == {"key": expected}


def test_without_a_secret_the_salt_is_derived_from_secret_key(
    alice_client: Client, settings: Any
) -> None:
    settings.CACHE_ENCRYPTION_SECRET = ""
    salt = hmac.new(settings.SECRET_KEY.encode(), b"vero-cache-salt", hashlib.sha256).digest()

    key = key_of(alice_client)

    session_key = alice_client.session.session_key
    assert session_key
    assert key == rfc5869(ikm=session_key.encode(), salt=salt, info=b"vero-cache-v1")
    settings.SECRET_KEY = settings.SECRET_KEY + "-another-install"
    assert base64url(cache_key_derive(session_id=session_key)) != key


def test_logging_out_and_in_again_gives_a_new_key(alice: User) -> None:
    client = Client()
    assert client.login(email=alice.email, password=PASSWORD)
    first = key_of(client)
    assert key_of(client) == first  # the same session, the same key

    client.logout()
    assert client.post(URL).status_code == 401
    assert client.login(email=alice.email, password=PASSWORD)

    assert key_of(client) != first


def test_a_guests_key_is_stable_across_requests_and_derives_from_their_id(
    guest: User, settings: Any
) -> None:
    settings.CACHE_ENCRYPTION_SECRET = VECTOR["salt"]
    first, second = client_for_guest(guest), client_for_guest(guest)

    assert key_of(first) == key_of(first) == key_of(second)
    assert key_of(first) == base64url(cache_key_derive(session_id=str(guest.id)))


def test_a_guest_who_has_written_nothing_yet_gets_a_key_from_their_cookie() -> None:
    client = Client()
    guest_id = uuid.uuid4()
    client.cookies[settings.GUEST_COOKIE_NAME] = guest_token_issue(guest_id=guest_id)

    assert key_of(client) == base64url(cache_key_derive(session_id=str(guest_id)))
    assert not User.objects.filter(id=guest_id).exists()


@pytest.mark.parametrize("cookie", [None, "forged.guest.token"])
def test_without_a_session_or_a_valid_guest_cookie_the_answer_is_401_and_no_guest(
    cookie: str | None,
) -> None:
    client = Client()
    if cookie is not None:
        client.cookies[settings.GUEST_COOKIE_NAME] = cookie
    users = User.objects.count()

    response = client.post(URL)

    assert response.status_code == 401
    assert "key" not in orjson.loads(response.content)
    assert settings.GUEST_COOKIE_NAME not in response.cookies  # no guest made up for it
    assert User.objects.count() == users


def test_a_post_without_its_csrf_token_is_refused(guest: User, alice: User) -> None:
    guest_browser = client_for_guest(guest)
    guest_browser.handler.enforce_csrf_checks = True
    account_browser = Client(enforce_csrf_checks=True)
    account_browser.force_login(alice)

    for browser in (guest_browser, account_browser):
        assert browser.post(URL).status_code == 403
        browser.get("/")  # the page sets the CSRF cookie
        token = browser.cookies[settings.CSRF_COOKIE_NAME].value
        assert browser.post(URL, headers={"X-CSRFToken": token}).status_code == 200


def test_only_post_is_allowed(alice_client: Client) -> None:
    assert alice_client.get(URL).status_code == 405
