"""Writes on chats: create, rename, delete (with a tombstone), and the guest upgrade's move."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction

from chats.models import Chat, ChatDeletion, TokenUsage
from chats.tree import chat_lock
from realtime.events import publish

TITLE_FALLBACK_LENGTH = 60


def title_fallback(text: str) -> str:
    """Return the first line of `text`, cut at 60 characters on a word boundary if possible."""
    line = " ".join(text.split())
    if len(line) <= TITLE_FALLBACK_LENGTH:
        return line
    cut = line[:TITLE_FALLBACK_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_FALLBACK_LENGTH]
    return cut.rstrip(",.;:") + "…"


def chat_create(
    *, user_id: uuid.UUID, title: str = "", settings: dict[str, Any] | None = None
) -> Chat:
    chat = Chat.objects.create(user_id=user_id, title=title, settings=settings or {})
    publish(user_id=user_id, kind="chat.created", chat_id=chat.id)
    return chat


def chat_rename(*, chat: Chat, title: str) -> Chat:
    title = " ".join(title.split())[:200]
    with transaction.atomic():
        chat.title = title
        chat.save(update_fields=["title", "updated_at"])
        publish(user_id=chat.user_id, kind="chat.updated", chat_id=chat.id)
    return chat


def chat_delete(*, chat: Chat) -> None:
    """Delete a chat and its whole tree with set-based statements, leaving a tombstone."""
    with transaction.atomic():
        chat_lock(chat_id=chat.id)
        with connection.cursor() as cursor:
            # Set-based deletes: Django's collector would load every message into Python.
            # The FK constraints are deferred, so the order only has to be right at commit.
            cursor.execute(
                "UPDATE chats_chat SET forked_from_message_id = NULL, parent_chat_id = NULL "
                "WHERE parent_chat_id = %s",
                [chat.id],
            )
            cursor.execute("DELETE FROM chats_message WHERE chat_id = %s", [chat.id])
            cursor.execute("DELETE FROM chats_branch WHERE chat_id = %s", [chat.id])
            cursor.execute("DELETE FROM chats_chat WHERE id = %s", [chat.id])
        ChatDeletion.objects.create(chat_id=chat.id, user_id=chat.user_id)
        publish(user_id=chat.user_id, kind="chat.deleted", chat_id=chat.id)


def chats_move_to_account(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
    """Guest upgrade: the guest's chats, tombstones and usage become the account's."""
    moved = list(Chat.objects.filter(user_id=guest_id).values_list("id", flat=True))
    Chat.objects.filter(user_id=guest_id).update(user_id=account_id)
    ChatDeletion.objects.filter(user_id=guest_id).update(user_id=account_id)
    TokenUsage.objects.filter(user_id=guest_id).update(user_id=account_id)
    for chat_id in moved:
        publish(user_id=account_id, kind="chat.created", chat_id=chat_id)
