"""Secrets at rest: AES-GCM tokens, the key ring, rotation and re-encryption."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from pytest_django.fixtures import Settings

from models_registry.models import Provider, ProviderKind
from models_registry.resolver import provider_api_key
from models_registry.services import provider_key_set
from vero.lib.secrets import (
    SecretDecryptError,
    secret_current_key_id,
    secret_decrypt,
    secret_encrypt,
    secret_last_four,
    secret_needs_rotation,
    secret_rotate,
)

OLD_KEY = "an old encryption key that served us well"
NEW_KEY = "a brand new encryption key for this quarter"


def test_a_secret_round_trips_and_the_token_does_not_contain_it() -> None:
    token = secret_encrypt(plaintext="sk-live-abcdef123456")

    assert "abcdef" not in token
    assert secret_decrypt(token=token) == "sk-live-abcdef123456"


def test_two_encryptions_of_the_same_secret_differ() -> None:
    assert secret_encrypt(plaintext="same") != secret_encrypt(plaintext="same")


def test_a_tampered_token_is_refused() -> None:
    token = secret_encrypt(plaintext="sk-live-abcdef123456")
    version, key_id, body = token.split("$")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]

    with pytest.raises(SecretDecryptError):
        secret_decrypt(token=f"{version}${key_id}${flipped}")
    with pytest.raises(SecretDecryptError):
        secret_decrypt(token="not a token")


def test_without_configured_keys_the_key_comes_from_secret_key(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = []
    token = secret_encrypt(plaintext="hello")

    settings.SECRET_KEY = "another secret key entirely, 50 characters long...."

    with pytest.raises(SecretDecryptError):
        secret_decrypt(token=token)


def test_an_old_key_still_decrypts_after_a_new_one_is_put_first(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    token = secret_encrypt(plaintext="sk-rotate-me-9876")

    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    assert secret_decrypt(token=token) == "sk-rotate-me-9876"
    assert secret_needs_rotation(token=token)
    rotated = secret_rotate(token=token)
    assert rotated.split("$")[1] == secret_current_key_id()
    assert not secret_needs_rotation(token=rotated)

    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]
    assert secret_decrypt(token=rotated) == "sk-rotate-me-9876"
    with pytest.raises(SecretDecryptError):
        secret_decrypt(token=token)


def test_secrets_stored_before_keys_were_configured_stay_readable(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = []
    token = secret_encrypt(plaintext="sk-from-the-early-days")

    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]

    assert secret_decrypt(token=token) == "sk-from-the-early-days"


def test_only_the_last_four_characters_may_be_shown() -> None:
    assert secret_last_four(plaintext="sk-live-abcdef123456") == "3456"
    assert secret_last_four(plaintext="short") == ""


@pytest.mark.django_db
def test_reencrypt_secrets_moves_every_stored_key_to_the_current_key(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    provider = Provider.objects.create(
        slug="vllm", name="vLLM", kind=ProviderKind.CUSTOM, base_url="http://10.0.0.5:8000/v1"
    )
    provider_key_set(provider=provider, api_key="sk-vllm-key-5555")
    old_token = provider.api_key_encrypted

    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("reencrypt_secrets", stdout=StringIO())
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]

    provider.refresh_from_db()
    assert provider.api_key_encrypted != old_token
    assert provider_api_key(provider=provider) == "sk-vllm-key-5555"
    assert provider.api_key_last_four == "5555"
