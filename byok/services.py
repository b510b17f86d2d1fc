"""Writes of users' keys, endpoints and models. Each either succeeds or changes nothing.

Secrets are encrypted before they reach a model instance and never logged; only their last
four characters are kept in the clear.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import User
from byok.models import (
    PLATFORM_KINDS,
    PROVIDER_MODEL_ID_PATTERN,
    UserByokModel,
    UserCustomProvider,
    UserProviderKey,
)
from byok.urlguard import UnsafeURLError, url_guard_check
from models_registry.models import Modality
from vero.errors import ErrorKind, VeroError
from vero.lib.secrets import secret_encrypt, secret_last_four

logger = logging.getLogger(__name__)

_KEY_MAX_LENGTH = 1000
_PROVIDER_MODEL_ID = re.compile(PROVIDER_MODEL_ID_PATTERN)


class ByokInputError(VeroError):
    """Input a user can fix; the message says how, and `field` which input it is about."""

    code = "byok_invalid_input"
    kind = ErrorKind.INVALID
    default_message = "Check what you entered."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _clean_key(api_key: str, *, required: bool) -> str:
    key = api_key.strip()
    if not key:
        if required:
            raise ByokInputError("Enter the API key.", field="api_key")
        return ""
    if len(key) > _KEY_MAX_LENGTH or any(char.isspace() for char in key):
        raise ByokInputError(
            "This does not look like an API key: it contains spaces or is far too long.",
            field="api_key",
        )
    return key


def byok_key_set(*, user: User, provider: str, api_key: str) -> UserProviderKey:
    """Store (or replace) the user's key for a platform provider; its models stay."""
    if provider not in PLATFORM_KINDS:
        raise ByokInputError("Choose one of the listed providers.", field="provider")
    key = _clean_key(api_key, required=True)
    row, _ = UserProviderKey.objects.update_or_create(
        user=user,
        provider=provider,
        defaults={
            "api_key_encrypted": secret_encrypt(plaintext=key),
            "api_key_last_four": secret_last_four(plaintext=key),
        },
    )
    return row


def byok_key_delete(*, key: UserProviderKey) -> None:
    """Delete a key and the models that were served with it."""
    key.delete()


def endpoint_base_url_normalize(url: str) -> str:
    """Return the base URL to store: no trailing slash, `/v1` when no path was given."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, parts.query, ""))


def byok_endpoint_create(
    *, user: User, name: str, base_url: str, api_key: str = "", slug: str = ""
) -> UserCustomProvider:
    """Add an OpenAI-compatible endpoint after checking where its URL leads (urlguard)."""
    name = name.strip()
    if not name:
        raise ByokInputError("Give the endpoint a name.", field="name")
    slug = slugify(slug.strip() or name)[:30].strip("-")
    if not slug:
        raise ByokInputError("Give the endpoint a name made of letters or digits.", field="slug")
    try:
        url_guard_check(base_url)
    except UnsafeURLError as error:
        raise ByokInputError(error.message, field="base_url") from error
    normalized = endpoint_base_url_normalize(base_url)
    if len(normalized) > UserCustomProvider._meta.get_field("base_url").max_length:  # type: ignore[operator]
        raise ByokInputError("This URL is too long.", field="base_url")
    key = _clean_key(api_key, required=False)
    try:
        with transaction.atomic():
            return UserCustomProvider.objects.create(
                user=user,
                slug=slug,
                name=name[:80],
                base_url=normalized,
                api_key_encrypted=secret_encrypt(plaintext=key) if key else "",
                api_key_last_four=secret_last_four(plaintext=key) if key else "",
            )
    except IntegrityError as error:
        raise ByokInputError(
            f"You already have an endpoint named “{slug}”; choose another short name.",
            field="slug",
        ) from error


def byok_endpoint_delete(*, endpoint: UserCustomProvider) -> None:
    """Delete an endpoint and the models it served."""
    endpoint.delete()


def _clean_provider_model_id(provider_model_id: str) -> str:
    provider_model_id = provider_model_id.strip()
    limit = UserByokModel._meta.get_field("provider_model_id").max_length
    if not provider_model_id:
        raise ByokInputError("Enter the model's id.", field="provider_model_id")
    if not _PROVIDER_MODEL_ID.match(provider_model_id) or len(provider_model_id) > limit:  # type: ignore[operator]
        raise ByokInputError(
            "A model id is the provider's name for it, such as gpt-5.2 or llama3.1:8b "
            f"(letters, digits and . _ : / @ + -, at most {limit} characters).",
            field="provider_model_id",
        )
    return provider_model_id


def byok_model_add(
    *,
    user: User,
    provider_model_id: str,
    key: UserProviderKey | None = None,
    endpoint: UserCustomProvider | None = None,
    display_name: str = "",
    input_modalities: Sequence[str] = (),
    supports_tools: bool = False,
    supports_reasoning: bool = False,
    context_window: int | None = None,
    max_output_tokens: int | None = None,
) -> UserByokModel:
    """Add a model served by one of the user's keys or endpoints."""
    if (key is None) == (endpoint is None):
        raise ByokInputError("Choose where the model is served from.")
    source_owner = key.user_id if key is not None else endpoint.user_id  # type: ignore[union-attr]
    if source_owner != user.id:
        raise ByokInputError("Choose where the model is served from.")
    provider_model_id = _clean_provider_model_id(provider_model_id)
    if set(input_modalities) - {choice.value for choice in Modality}:
        raise ByokInputError("Choose inputs from the list.", field="input_modalities")
    for number in (context_window, max_output_tokens):
        if number is not None and not 0 < number < 2**31:
            raise ByokInputError("Token counts must be positive whole numbers.")
    try:
        with transaction.atomic():
            return UserByokModel.objects.create(
                user=user,
                key=key,
                endpoint=endpoint,
                provider_model_id=provider_model_id,
                display_name=(display_name.strip() or provider_model_id)[:120],
                input_modalities=sorted(set(input_modalities) - {Modality.TEXT.value}),
                supports_tools=supports_tools,
                supports_reasoning=supports_reasoning,
                context_window=context_window,
                max_output_tokens=max_output_tokens,
            )
    except IntegrityError as error:
        raise ByokInputError(
            f"{provider_model_id} is already one of your models.", field="provider_model_id"
        ) from error


def byok_model_delete(*, model: UserByokModel) -> None:
    model.delete()


def _models_merge(
    *, rows: Sequence[UserByokModel], account_id: uuid.UUID, **source: object
) -> None:
    """Move a guest's models under the account's source, except those it already has."""
    kept = set(UserByokModel.objects.filter(**source).values_list("provider_model_id", flat=True))
    moving = [row.pk for row in rows if row.provider_model_id not in kept]
    UserByokModel.objects.filter(pk__in=moving).update(user_id=account_id, **source)


def byok_guest_move(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
    """Give a guest's keys, endpoints and models to the account; the account wins conflicts.

    A guest's key for a provider the account already has a key for is dropped, and its models
    move under the account's key (same provider, same model names). A guest's endpoint whose
    short name the account already uses is dropped with its models unless it is the same URL,
    in which case its models move under the account's endpoint. What is left goes with the
    guest's row.
    """
    account_keys = {key.provider: key for key in UserProviderKey.objects.filter(user_id=account_id)}
    for key in UserProviderKey.objects.filter(user_id=guest_id):
        rows = list(UserByokModel.objects.filter(key=key))
        if key.provider in account_keys:
            _models_merge(rows=rows, account_id=account_id, key=account_keys[key.provider])
            continue
        UserProviderKey.objects.filter(pk=key.pk).update(user_id=account_id)
        UserByokModel.objects.filter(key=key).update(user_id=account_id)

    account_endpoints = {
        endpoint.slug: endpoint
        for endpoint in UserCustomProvider.objects.filter(user_id=account_id)
    }
    for endpoint in UserCustomProvider.objects.filter(user_id=guest_id):
        rows = list(UserByokModel.objects.filter(endpoint=endpoint))
        existing = account_endpoints.get(endpoint.slug)
        if existing is not None:
            if existing.base_url == endpoint.base_url:
                _models_merge(rows=rows, account_id=account_id, endpoint=existing)
            continue
        UserCustomProvider.objects.filter(pk=endpoint.pk).update(user_id=account_id)
        UserByokModel.objects.filter(endpoint=endpoint).update(user_id=account_id)
