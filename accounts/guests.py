"""Guest identity: a signed, expiring cookie that names a guest before any row exists."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.http import HttpResponseBase

_ALGORITHM = "HS256"
_TOKEN_TYPE = "guest"
# Active guests get a fresh expiry at most once a day, so the cookie slides without churn.
_REFRESH_AFTER = timedelta(days=1)


@dataclass
class GuestSession:
    """The guest behind an anonymous request; `issue_cookie` asks the response to (re)set it."""

    id: uuid.UUID
    issue_cookie: bool = False
    # No valid cookie named this guest: the request made them up (nothing of theirs exists).
    fresh: bool = False


@dataclass(frozen=True)
class GuestClaims:
    guest_id: uuid.UUID
    issued_at: datetime


def guest_token_issue(*, guest_id: uuid.UUID, now: datetime | None = None) -> str:
    """Return a signed token naming `guest_id`, valid for GUEST_TOKEN_MAX_AGE_DAYS."""
    now = now or datetime.now(UTC)
    claims = {
        "sub": str(guest_id),
        "typ": _TOKEN_TYPE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(days=settings.GUEST_TOKEN_MAX_AGE_DAYS)).timestamp()),
    }
    return jwt.encode(claims, settings.GUEST_SECRET, algorithm=_ALGORITHM)


def guest_token_verify(token: str | None) -> GuestClaims | None:
    """Return the claims of a valid token; None for a missing, forged, expired or odd one."""
    if not token or len(token) > 1024:
        return None
    decoded = _decode(token, settings.GUEST_SECRET)
    if decoded is None or decoded[2] <= datetime.now(UTC).timestamp():
        return None
    return GuestClaims(guest_id=decoded[0], issued_at=decoded[1])


@functools.lru_cache(maxsize=2048)
def _decode(token: str, secret: str) -> tuple[uuid.UUID, datetime, int] | None:
    """Verify a token's signature and shape once; a browser sends the same one on every request.

    Measured by bench/bench_guest_cookie.py: PyJWT's decode costs ~10x Django's own signed
    cookie check, and the cache brings a repeat visit back under it. Expiry is checked by the
    caller on every request, so a cached token still expires on time.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            options={"require": ["sub", "iat", "exp"], "verify_exp": False},
        )
        if claims.get("typ") != _TOKEN_TYPE:
            return None
        return (
            uuid.UUID(str(claims["sub"])),
            datetime.fromtimestamp(int(claims["iat"]), tz=UTC),
            int(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
        return None


def guest_session_from_cookie(token: str | None) -> GuestSession:
    """Return the guest a cookie names, or a brand-new guest when it names none validly."""
    claims = guest_token_verify(token)
    if claims is None:
        return GuestSession(id=uuid.uuid4(), issue_cookie=True, fresh=True)
    stale = datetime.now(UTC) - claims.issued_at > _REFRESH_AFTER
    return GuestSession(id=claims.guest_id, issue_cookie=stale)


def guest_cookie_set(response: HttpResponseBase, *, guest_id: uuid.UUID) -> None:
    response.set_cookie(
        settings.GUEST_COOKIE_NAME,
        guest_token_issue(guest_id=guest_id),
        max_age=settings.GUEST_TOKEN_MAX_AGE_DAYS * 86400,
        domain=settings.COOKIE_DOMAIN,
        secure=settings.SECURE_COOKIES,
        httponly=True,
        samesite="Lax",
    )


def guest_cookie_clear(response: HttpResponseBase) -> None:
    response.delete_cookie(
        settings.GUEST_COOKIE_NAME, domain=settings.COOKIE_DOMAIN, samesite="Lax"
    )
