"""Checks that keys stay out of what users and logs see, shared by the redaction tests."""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from urllib.parse import quote

import pytest

PIECE = 12


def _forms(secrets: Iterable[str]) -> set[str]:
    """Every 12-character piece of each key, as sent and URL-encoded: a piece is a leak too."""
    forms: set[str] = set()
    for secret in secrets:
        for encoded in (secret, quote(secret, safe="")):
            size = min(PIECE, len(encoded))
            forms.update(encoded[start : start + size] for start in range(len(encoded) - size + 1))
    return forms


def assert_no_secret(text: str, secrets: Iterable[str], *, where: str) -> None:
    for form in _forms(secrets):
        assert form not in text, (
            f"a key shows in {where}: …{text[max(0, text.find(form) - 80) :][:200]}"
        )


def error_text(error: BaseException) -> str:
    """Everything an error can say: its message, repr and whole logged traceback."""
    return f"{error!s}\n{error!r}\n" + "".join(traceback.format_exception(error))


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as a log file would hold it, tracebacks included."""
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)
