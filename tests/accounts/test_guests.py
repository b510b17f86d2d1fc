"""Guest identity: the signed cookie, and a guest row created only on the first write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.guests import guest_token_issue, guest_token_verify
from accounts.models import User

COOKIE = "vero_guest"


def _guest_id_from(response_cookie: str) -> uuid.UUID:
    claims = guest_token_verify(response_cookie)
    assert claims is not None
    return claims.guest_id


def test_a_token_round_trips_to_the_same_guest() -> None:
    guest_id = uuid.uuid4()
    claims = guest_token_verify(guest_token_issue(guest_id=guest_id))
    assert claims is not None
    assert claims.guest_id == guest_id


def test_it_rejects_a_token_signed_with_another_key() -> None:
    forged = jwt.encode(
        {"sub": str(uuid.uuid4()), "typ": "guest", "iat": 1, "exp": 2**40}, "not-our-key", "HS256"
    )
    assert guest_token_verify(forged) is None


def test_it_rejects_an_expired_token() -> None:
    long_ago = datetime.now(UTC) - timedelta(days=settings.GUEST_TOKEN_MAX_AGE_DAYS + 1)
    assert guest_token_verify(guest_token_issue(guest_id=uuid.uuid4(), now=long_ago)) is None


def test_it_rejects_an_unsigned_token() -> None:
    claims = {"sub": str(uuid.uuid4()), "typ": "guest", "iat": 1, "exp": 2**40}
    unsigned = jwt.encode(claims, None, "none")  # type: ignore[arg-type]
    assert guest_token_verify(unsigned) is None


def test_it_rejects_a_token_of_another_type_or_subject() -> None:
    now = int(datetime.now(UTC).timestamp())
    other_type = jwt.encode(
        {"sub": str(uuid.uuid4()), "typ": "session", "iat": now, "exp": now + 60},
        settings.GUEST_SECRET,
        "HS256",
    )
    not_a_uuid = jwt.encode(
        {"sub": "alice", "typ": "guest", "iat": now, "exp": now + 60},
        settings.GUEST_SECRET,
        "HS256",
    )
    assert guest_token_verify(other_type) is None
    assert guest_token_verify(not_a_uuid) is None


def test_it_signs_with_guest_secret_when_set(settings: SettingsWrapper) -> None:
    settings.GUEST_SECRET = "a-dedicated-guest-secret-of-enough-length"
    token = guest_token_issue(guest_id=uuid.uuid4())
    jwt.decode(token, "a-dedicated-guest-secret-of-enough-length", algorithms=["HS256"])


@pytest.mark.django_db
def test_a_first_visit_gets_a_guest_cookie_but_no_user_row(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert _guest_id_from(cookie.value)
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_crawling_many_pages_creates_no_users(client: Client) -> None:
    for _ in range(5):
        assert Client().get("/").status_code == 200
        assert Client().get("/settings/").status_code == 200
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_the_guest_row_is_created_on_the_first_write_with_the_cookie_id(client: Client) -> None:
    guest_id = _guest_id_from(client.get("/").cookies[COOKIE].value)

    response = client.post(
        "/settings/", {"name": "Gus", "occupation": "", "custom_instructions": ""}
    )

    assert response.status_code == 302
    user = User.objects.get()
    assert user.id == guest_id
    assert user.is_guest
    assert user.email is None
    assert user.name == "Gus"
    client.post("/settings/", {"name": "Gus again", "occupation": "", "custom_instructions": ""})
    assert User.objects.get().name == "Gus again"


@pytest.mark.django_db
def test_a_known_guest_keeps_their_identity_without_a_new_cookie(guest: User) -> None:
    client = Client()
    client.cookies[COOKIE] = guest_token_issue(guest_id=guest.id)
    response = client.get("/")
    assert COOKIE not in response.cookies
    assert b"Guest" in response.content


@pytest.mark.django_db
def test_an_old_cookie_is_refreshed_for_the_same_guest(guest: User) -> None:
    client = Client()
    client.cookies[COOKIE] = guest_token_issue(
        guest_id=guest.id, now=datetime.now(UTC) - timedelta(days=3)
    )
    response = client.get("/")
    assert _guest_id_from(response.cookies[COOKIE].value) == guest.id


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "a.b.c",
        "",
        "x" * 5000,
        jwt.encode(
            {"sub": str(uuid.uuid4()), "typ": "guest", "iat": 1, "exp": 2**40}, "forged", "HS256"
        ),
    ],
)
def test_a_bad_cookie_yields_a_fresh_guest_not_an_error(cookie: str, guest: User) -> None:
    client = Client()
    client.cookies[COOKIE] = cookie
    response = client.get("/")
    assert response.status_code == 200
    fresh = _guest_id_from(response.cookies[COOKIE].value)
    assert fresh != guest.id


@pytest.mark.django_db
def test_an_expired_cookie_yields_a_fresh_guest(guest: User) -> None:
    client = Client()
    client.cookies[COOKIE] = guest_token_issue(
        guest_id=guest.id, now=datetime.now(UTC) - timedelta(days=365)
    )
    response = client.get("/")
    assert response.status_code == 200
    assert _guest_id_from(response.cookies[COOKIE].value) != guest.id


@pytest.mark.django_db
def test_a_cookie_naming_an_account_cannot_act_as_that_account(alice: User) -> None:
    client = Client()
    client.cookies[COOKIE] = guest_token_issue(guest_id=alice.id)
    client.post("/settings/", {"name": "Mallory", "occupation": "", "custom_instructions": ""})
    alice.refresh_from_db()
    assert alice.name == "Alice"
    assert User.objects.filter(is_guest=True, name="Mallory").count() == 1


@pytest.mark.django_db
def test_the_cookie_is_secure_and_scoped_when_configured(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.SECURE_COOKIES = True
    settings.COOKIE_DOMAIN = "example.com"
    cookie = client.get("/", headers={"host": "localhost"}).cookies[COOKIE]
    assert cookie["secure"]
    assert cookie["domain"] == "example.com"


@pytest.mark.django_db
def test_a_logged_in_account_gets_no_guest_cookie(alice_client: Client) -> None:
    response = alice_client.get("/")
    assert COOKIE not in response.cookies
    assert b"Alice" in response.content
