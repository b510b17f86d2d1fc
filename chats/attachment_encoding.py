"""A question's files, read from storage and encoded for the model, in the generation task.

`context_build` leaves a placeholder per file (`FILE_PLACEHOLDER`) so the request that starts an
answer reads no file. Before the answer's first step, the task reads the attachments' rows and
bytes in a worker thread (never on the loop) and writes OpenAI content parts (docs/attachments.md,
"Sending"): images as data URLs, audio as `input_audio` with its format, PDFs as `file` parts.
Both engines send this format; LiteLLM translates it for the providers it serves.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import default_storage

from chats.answer_services import db_off_loop
from chats.context_selectors import FILE_PLACEHOLDER
from chats.models import Attachment

# `input_audio`'s format, by the sniffed type.
AUDIO_FORMATS = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3",
    "audio/mp3": "mp3", "audio/ogg": "ogg", "audio/opus": "ogg", "audio/webm": "webm",
    "audio/mp4": "m4a", "audio/x-m4a": "m4a", "audio/flac": "flac", "audio/x-flac": "flac",
}  # fmt: skip


class FileGone(Exception):
    """A file the question refers to is no longer stored: the answer fails saying which."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The attached file {name!r} is no longer available: attach it again to send it."
        )
        self.message = str(self)


def _placeholders(messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            yield from (item for item in content if item.get("type") == FILE_PLACEHOLDER)


def has_files(messages: list[dict[str, Any]]) -> bool:
    return next(_placeholders(messages), None) is not None


def _content_part(attachment: Attachment, data: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(data).decode("ascii")
    if attachment.kind == Attachment.Kind.IMAGE:
        url = f"data:{attachment.content_type};base64,{encoded}"
        return {"type": "image_url", "image_url": {"url": url}}
    if attachment.kind == Attachment.Kind.AUDIO:
        audio_format = AUDIO_FORMATS.get(attachment.content_type, "wav")
        return {"type": "input_audio", "input_audio": {"data": encoded, "format": audio_format}}
    file_data = f"data:{attachment.content_type};base64,{encoded}"
    return {"type": "file", "file": {"filename": attachment.name, "file_data": file_data}}


def _encoded(placeholders: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each placeholder's content part, by attachment id (runs in a worker thread: one query,
    then the files, read whole: a provider takes the file in its request body anyway)."""
    ids = {uuid.UUID(item["attachment_id"]) for item in placeholders}
    rows = {str(row.id): row for row in Attachment.objects.filter(id__in=ids)}
    parts: dict[str, dict[str, Any]] = {}
    for item in placeholders:
        attachment_id = item["attachment_id"]
        if attachment_id in parts:
            continue
        row = rows.get(attachment_id)
        if row is None:
            raise FileGone(item.get("name") or "file")
        try:
            with default_storage.open(str(row.file.name), "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, OSError) as error:
            raise FileGone(row.name) from error
        parts[attachment_id] = _content_part(row, data)
    return parts


async def files_encoded(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` with every file placeholder replaced by its content part (FileGone when a
    file is not stored any more). Messages without files are returned as they are."""
    placeholders = list(_placeholders(messages))
    if not placeholders:
        return messages
    parts = await db_off_loop(_encoded)(placeholders)
    encoded: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = [
                parts[item["attachment_id"]] if item.get("type") == FILE_PLACEHOLDER else item
                for item in content
            ]
            message = {**message, "content": content}
        encoded.append(message)
    return encoded
