"""Calls to a user's own provider on their behalf: "Test" and "List models".

Synchronous wrappers for the views: each decrypts the key for the call only and returns a
report or raises `LLMError` with a message fit to show (the calls remove the key from the
provider's words: `models_registry.calls.error_redact`).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync

from byok.models import UserCustomProvider, UserProviderKey
from byok.remote import models_list_remote
from byok.selectors import platform_base_url
from byok.urlguard import guard_policy
from models_registry.calls import LLMError, RemoteModel
from vero.lib.secrets import SecretDecryptError, secret_decrypt


def _secret(token: str) -> str | None:
    if not token:
        return None
    try:
        return secret_decrypt(token=token)
    except SecretDecryptError as error:
        raise LLMError(
            "The stored key can no longer be read on this server; enter it again."
        ) from error


def _plural(count: int) -> str:
    return f"{count} model{'s' if count != 1 else ''}"


def key_test(*, key: UserProviderKey) -> str:
    """Make the cheapest call the provider offers with the user's key; return what it said."""
    from models_registry.llm import provider_ping

    report: str = async_to_sync(provider_ping)(
        kind=key.provider,
        api_base=platform_base_url(kind=key.provider),
        api_key=_secret(key.api_key_encrypted),
    )
    return report


def key_models_list(*, key: UserProviderKey) -> list[RemoteModel]:
    api_key = _secret(key.api_key_encrypted)
    return async_to_sync(models_list_remote)(
        kind=key.provider,
        base_url=platform_base_url(kind=key.provider),
        api_key=api_key,
        policy=None,  # the platform provider's address is the admin's, not the user's
    )


def endpoint_models_list(*, endpoint: UserCustomProvider) -> list[RemoteModel]:
    return async_to_sync(models_list_remote)(
        kind="custom",
        base_url=endpoint.base_url,
        api_key=_secret(endpoint.api_key_encrypted),
        policy=guard_policy(),
    )


def endpoint_test(*, endpoint: UserCustomProvider) -> str:
    """List the endpoint's models through the URL guard; return what was found."""
    models = endpoint_models_list(endpoint=endpoint)
    return f"Connected: {endpoint.name} lists {_plural(len(models))}."
