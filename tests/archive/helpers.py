"""Helpers for archive tests: entries and chats made through the real services."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from archive.models import ArchiveEntry
from archive.services import entry_create
from chats.models import Chat


def entry(user: User, title: str, body: str = "", tags: tuple[str, ...] = ()) -> ArchiveEntry:
    return entry_create(user_id=user.id, title=title, body=body, tags=tags)


def chat_of(user: User, title: str = "Planning") -> Chat:
    return Chat.objects.create(user=user, title=title)


def system_message(request: Any) -> str:
    """The system message a recorded provider request carried ("" when it had none)."""
    first = request.messages[0] if request.messages else {}
    return str(first.get("content") or "") if first.get("role") == "system" else ""
