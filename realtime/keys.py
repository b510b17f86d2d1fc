"""The key that encrypts a browser's cache of a user's chats, derived per session.

The browser keeps chats in IndexedDB encrypted with AES-256-GCM under a key it asks for at
`POST /api/cache/key` and imports as non-extractable. The key is never stored: it is derived on
each request with HKDF-SHA256 from the session's stable id (the Django session key of an
account, the guest id of a guest), so a new session (logging out and in, another device) gets a
new key and the old cache no longer decrypts; the browser then drops it. The salt is
`CACHE_ENCRYPTION_SECRET`, or, when it is unset, a value derived from `SECRET_KEY`, so a trial
install needs no setting and the salt still differs from one install to the next. The derivation
is the one WebCrypto's HKDF performs (tests/realtime/cache_key_vector.json holds one vector that
the Python and the browser tests share).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

CACHE_KEY_INFO = b"vero-cache-v1"
CACHE_KEY_BYTES = 32  # AES-256


def cache_key_salt() -> bytes:
    """The HKDF salt: CACHE_ENCRYPTION_SECRET, else one derived from SECRET_KEY.

    Derived rather than SECRET_KEY itself, so that the cache's salt reveals nothing usable
    about the key that signs sessions.
    """
    secret = settings.CACHE_ENCRYPTION_SECRET
    if secret:
        return secret.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"vero-cache-salt", hashlib.sha256).digest()


def cache_key_derive(*, session_id: str) -> bytes:
    """Derive the 32-byte cache key of the session whose stable id is `session_id`."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=CACHE_KEY_BYTES, salt=cache_key_salt(),
        info=CACHE_KEY_INFO,
    )  # fmt: skip
    return hkdf.derive(session_id.encode())


def base64url(raw: bytes) -> str:
    """Unpadded base64url, as WebCrypto's JWK and the browser's helpers read it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
