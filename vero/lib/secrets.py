"""Secrets at rest: AES-GCM with a rotatable key ring from settings.

A stored secret is a token `v1$<key id>$<base64url(nonce || ciphertext)>`. The key ring comes
from `SECRETS_ENCRYPTION_KEYS` (comma-separated, the first one encrypts, every one decrypts);
when it is unset, one key is derived from SECRET_KEY with HKDF. The SECRET_KEY-derived key
always stays in the ring for decryption only, so setting SECRETS_ENCRYPTION_KEYS later does
not strand the secrets stored before; `manage.py reencrypt_secrets` then moves them over.

Columns that hold tokens are `SecretField`s, which is how the re-encryption finds them all.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models, transaction

_VERSION = "v1"
_NONCE_BYTES = 12
_INFO_CONFIGURED = b"vero secrets at rest v1"
_INFO_FROM_SECRET_KEY = b"vero secrets at rest v1, derived from SECRET_KEY"


class SecretDecryptError(Exception):
    """A token is malformed, was made with a key no longer in the ring, or was tampered with."""


class SecretField(models.TextField):
    """A column holding a token from `secret_encrypt` (empty string: no secret)."""


@dataclass(frozen=True)
class _Key:
    key_id: str
    aead: AESGCM


def _derive(material: str, info: bytes) -> _Key:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material.encode())
    key_id = hashlib.sha256(raw).hexdigest()[:8]
    return _Key(key_id=key_id, aead=AESGCM(raw))


@lru_cache(maxsize=8)
def _ring_for(configured: tuple[str, ...], secret_key: str) -> tuple[_Key, ...]:
    keys = [_derive(material, _INFO_CONFIGURED) for material in configured]
    keys.append(_derive(secret_key, _INFO_FROM_SECRET_KEY))
    return tuple(keys)


def _ring() -> tuple[_Key, ...]:
    configured = getattr(settings, "SECRETS_ENCRYPTION_KEYS", []) or []
    materials = tuple(item.strip() for item in configured if item and item.strip())
    return _ring_for(materials, settings.SECRET_KEY)


def secret_current_key_id() -> str:
    """Return the id of the key that encrypts new secrets."""
    return _ring()[0].key_id


def secret_encrypt(*, plaintext: str) -> str:
    """Encrypt `plaintext` with the current key; return the token to store."""
    key = _ring()[0]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, plaintext.encode(), key.key_id.encode())
    body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{_VERSION}${key.key_id}${body}"


def _split(token: str) -> tuple[str, bytes]:
    try:
        version, key_id, body = token.split("$")
        if version != _VERSION:
            raise ValueError(version)
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as error:
        raise SecretDecryptError("The stored secret is not a valid token.") from error
    if len(blob) <= _NONCE_BYTES:
        raise SecretDecryptError("The stored secret is truncated.")
    return key_id, blob


def secret_decrypt(*, token: str) -> str:
    """Return the plaintext of `token`; raise SecretDecryptError when it cannot be opened."""
    key_id, blob = _split(token)
    for key in _ring():
        if key.key_id != key_id:
            continue
        try:
            nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
            return key.aead.decrypt(nonce, sealed, key_id.encode()).decode()
        except InvalidTag as error:
            raise SecretDecryptError("The stored secret was tampered with.") from error
    raise SecretDecryptError(
        "The stored secret was encrypted with a key that is no longer in SECRETS_ENCRYPTION_KEYS."
    )


def secret_needs_rotation(*, token: str) -> bool:
    """Tell whether `token` was encrypted with a key other than the current one."""
    key_id, _ = _split(token)
    return key_id != secret_current_key_id()


def secret_rotate(*, token: str) -> str:
    """Return `token` re-encrypted with the current key (the same token if it already is)."""
    if not secret_needs_rotation(token=token):
        return token
    return secret_encrypt(plaintext=secret_decrypt(token=token))


def secret_last_four(*, plaintext: str) -> str:
    """Return the only part of a secret that may be shown again: its last four characters."""
    return plaintext[-4:] if len(plaintext) >= 8 else ""


def _secret_columns() -> Iterable[tuple[type[models.Model], str]]:
    from django.apps import apps

    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, SecretField):
                yield model, field.attname


def secrets_reencrypt_all() -> int:
    """Re-encrypt every stored secret with the current key; return how many rows changed."""
    changed = 0
    for model, column in _secret_columns():
        with transaction.atomic():
            rows = model._default_manager.select_for_update().exclude(**{column: ""})
            for pk, token in rows.values_list("pk", column):
                rotated = secret_rotate(token=token)
                if rotated != token:
                    model._default_manager.filter(pk=pk).update(**{column: rotated})
                    changed += 1
    return changed
