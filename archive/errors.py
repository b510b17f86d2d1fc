"""What the archive refuses, in the project's error vocabulary (`vero.errors`).

Another user's entry or chat is "not found", never "forbidden": nobody learns what exists.
"""

from __future__ import annotations

from vero.errors import ErrorKind, VeroError


class ArchiveError(VeroError):
    """Input the archive cannot use as it is; nothing was changed."""

    code = "archive_invalid"
    kind = ErrorKind.INVALID
    default_message = "This change to the archive is not possible."


class EntryNotFound(ArchiveError):
    code = "archive_entry_not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "There is no such archive entry."


class ChatNotFound(ArchiveError):
    code = "archive_chat_not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "There is no such chat."


class LinkExists(ArchiveError):
    code = "archive_link_exists"
    kind = ErrorKind.CONFLICT
    default_message = "These entries are already linked that way."


class LinkNotFound(ArchiveError):
    code = "archive_link_not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "These entries are not linked that way."


class PinNotFound(ArchiveError):
    code = "archive_pin_not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "This entry is not pinned to this chat."


class SlugsExhausted(ArchiveError):
    code = "archive_slugs_exhausted"
    kind = ErrorKind.CONFLICT
    default_message = "No free name was found for this entry; try again."
