"""The one function that removes a call's secrets from error texts (`calls.error_redact`)."""

from __future__ import annotations

from models_registry.calls import (
    ENGINE_LITELLM,
    REDACTED,
    CallTarget,
    LLMError,
    ProviderAuthError,
    error_redact,
    text_redact,
)
from tests.secrets_support import error_text

KEY = "sk-platform-7f3a9c1e5b2d8f4a6c0e"
HEADER_SECRET = "gw-token-1b2c3d4e5f6a7b8c"


def test_a_key_is_replaced_whole_url_encoded_and_in_pieces() -> None:
    key = "sk-abc/def+ghi=jkl-0123456789"
    text = (
        f"Authorization: Bearer {key}; url: https://x.test/?key=sk-abc%2Fdef%2Bghi%3Djkl-0123456789;"
        f" masked: sk-abc/def+****6789; tail: ghi=jkl-01234"
    )

    cleaned = text_redact(text, secrets=[key])

    assert cleaned == (
        f"Authorization: Bearer {REDACTED}; url: https://x.test/?key={REDACTED};"
        f" masked: {REDACTED}****6789; tail: {REDACTED}"
    )


def test_a_key_cut_where_a_message_was_cut_is_still_removed() -> None:
    assert text_redact("echoed: Bearer sk-ab", secrets=["sk-abcdef123456"]) == (
        f"echoed: Bearer {REDACTED}"
    )


def test_text_without_secrets_and_short_secrets_are_left_alone() -> None:
    text = "The provider refused the API key: Incorrect API key provided."
    assert text_redact(text, secrets=["sk-unrelated-key-123456", None, "", "key"]) == text


def test_a_calls_secrets_are_its_key_extra_header_values_and_a_url_password() -> None:
    target = CallTarget(
        model_id="fakelab:fake-model",
        engine=ENGINE_LITELLM,
        provider_slug="fake",
        provider_kind="custom",
        provider_model="fake-model",
        api_base="https://gateway:pass-in-url@llm.example.com/v1",
        api_key=KEY,
        extra_params={"extra_headers": {"X-Gateway-Token": HEADER_SECRET}, "top_k": 3},
    )

    assert target.secrets == (KEY, HEADER_SECRET, "pass-in-url")


def test_an_error_chain_that_says_the_key_is_dropped() -> None:
    try:
        try:
            raise RuntimeError(f"401 from gateway: Bearer {KEY}")
        except RuntimeError as library_error:
            raise ProviderAuthError(f"refused: {KEY}") from library_error
    except ProviderAuthError as error:
        cleaned = error_redact(error, secrets=[KEY])

    assert cleaned.__cause__ is None and cleaned.__suppress_context__
    assert str(cleaned) == f"refused: {REDACTED}"
    assert KEY not in error_text(cleaned)


def test_another_error_that_says_the_key_becomes_a_clean_llm_error() -> None:
    cleaned = error_redact(ValueError(f"bad header Bearer {KEY}"), secrets=[KEY])

    assert isinstance(cleaned, LLMError)
    assert KEY not in error_text(cleaned)
