"""Helpers for chat tests: send like the browser does, wait for an answer, read SSE."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from django.test import Client

from chats.models import Chat, Message


def send(
    client: Client,
    text: str,
    model: str,
    chat_id: uuid.UUID | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    """Send as the page does: with the tree version it shows (the chat's current one here)."""
    url = f"/c/{chat_id}/send" if chat_id else "/c/send"
    if chat_id is not None and "version" not in extra:
        version = Chat.objects.filter(id=chat_id).values_list("tree_version", flat=True).first()
        extra["version"] = "" if version is None else str(version)
    return client.post(url, {"text": text, "model": model, **extra}, headers=headers)


def wait_for_answer(message_id: uuid.UUID, timeout: float = 15.0) -> Message:
    """Poll until the answer leaves `streaming` (it is generated on another thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = Message.objects.get(id=message_id)
        if message.status != Message.Status.STREAMING:
            return message
        time.sleep(0.05)
    raise AssertionError(f"answer {message_id} still streaming after {timeout} s")


def wait_for_title(chat: Chat, title: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chat.refresh_from_db()
        if chat.title == title:
            return
        time.sleep(0.05)
    raise AssertionError(f"chat title is {chat.title!r}, not {title!r}")


def sse_events(raw: bytes) -> list[tuple[int | None, str, Any]]:
    """Parse a server-sent event stream into (id, event, data) triples."""
    events = []
    for block in raw.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            seq = int(fields["id"]) if "id" in fields else None
            events.append((seq, fields["event"], orjson.loads(fields.get("data", "null"))))
    return events
