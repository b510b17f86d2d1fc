"""The BYOK personas' keys, and the check that none of them reaches a response body.

Kept apart from `tests/byok/conftest.py` (fixtures only) so tests import them from a plain
module; the conftest's log watch uses `SECRETS` too.
"""

from __future__ import annotations

from typing import Any

ALICE_OPENAI_KEY = "sk-alice-openai-4f1c9e7b2d8a6f3e"
ALICE_ENDPOINT_KEY = "sk-alice-endpoint-9b8a7c6d5e4f"
BOB_OPENAI_KEY = "sk-bob-openai-0a1b2c3d4e5f6a7b"
GUEST_KEY = "sk-guest-openrouter-5c4b3a2918"
SECRETS = (ALICE_OPENAI_KEY, ALICE_ENDPOINT_KEY, BOB_OPENAI_KEY, GUEST_KEY)


def assert_no_secret(response: Any) -> None:
    body = response.content.decode(errors="replace")
    for secret in SECRETS:
        assert secret not in body
