"""One vocabulary for refusals a user reads: a stable code, a sentence, and a kind.

Every app's errors derive from `VeroError`. The kind says what went wrong in HTTP terms, and
`http_status` is the one place that turns a kind into a status code, so a view (HTML or JSON)
answers an error the same way wherever it was raised. Raised before anything is written, or
inside the transaction that rolls back: an error means nothing changed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    INVALID = "invalid"  # the input cannot be used as it is; the user can fix it
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the data changed meanwhile, or is busy
    TOO_LARGE = "too_large"  # over a size limit or a storage quota
    RATE_LIMITED = "rate_limited"
    UPSTREAM = "upstream"  # a provider or endpoint failed
    UNAVAILABLE = "unavailable"  # this server cannot do it now


_STATUS = {
    ErrorKind.INVALID: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
}


class VeroError(Exception):
    """A refusal with a stable `code` (for JSON and logs) and a `message` fit to show a user."""

    code: ClassVar[str] = "error"
    kind: ClassVar[ErrorKind] = ErrorKind.INVALID
    default_message: ClassVar[str] = "This request cannot be carried out."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


def http_status(error: VeroError) -> int:
    """The HTTP status that answers this error."""
    return _STATUS[error.kind]
