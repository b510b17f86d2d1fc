"""Writes on chats: send, retry, stop, create, rename, delete (tombstone), the guest move."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from chats.models import Chat, ChatDeletion, Message, TokenUsage
from chats.tree import chat_lock, chat_tree_load, message_append
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


class SendRefusedError(Exception):
    """A send that cannot go ahead; nothing was written."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Turn:
    chat: Chat
    question: Message
    answer: Message
    chat_created: bool


def _leaf_of(chat: Chat) -> Message | None:
    path = chat_tree_load(chat=chat).active_path()
    return Message.objects.get(id=path[-1]) if path else None


def message_send(
    *,
    user_id: uuid.UUID,
    chat: Chat | None,
    text: str,
    model_id: str,
    parent_id: uuid.UUID | None = None,
    reasoning_effort: str | None = None,
) -> Turn:
    """Save the user's message and a `streaming` answer placeholder in one transaction.

    A new chat is created when `chat` is None (titled from the text until a better title is
    generated). The parent defaults to the end of the chat's shown branch.
    """
    with transaction.atomic():
        created = chat is None
        if chat is None:
            chat_settings: dict[str, Any] = {"model": model_id}
            if reasoning_effort:
                chat_settings["reasoning_effort"] = reasoning_effort
            chat = Chat.objects.create(
                user_id=user_id, title=title_fallback(text), settings=chat_settings
            )
            parent = None
        else:
            chat_lock(chat_id=chat.id)
            if parent_id is not None:
                parent = Message.objects.filter(id=parent_id, chat=chat).first()
                if parent is None:
                    raise SendRefusedError("That message is not part of this chat.", status=404)
            else:
                parent = _leaf_of(chat)
            if parent is not None and parent.status == Message.Status.STREAMING:
                raise SendRefusedError(
                    "Wait for the answer to finish, or stop it, before sending.", status=409
                )
            chat.settings = {**chat.settings, "model": model_id}
            if reasoning_effort:
                chat.settings["reasoning_effort"] = reasoning_effort
        question = message_append(
            chat=chat, parent=parent, role=Message.Role.USER, parts=[{"type": "text", "text": text}]
        )
        answer = message_append(
            chat=chat,
            parent=question,
            role=Message.Role.ASSISTANT,
            parts=[],
            model_id=model_id,
            status=Message.Status.STREAMING,
            parent_has_successor=False,
        )
        chat.save(update_fields=["root_message_index", "settings", "updated_at"])
        publish(
            user_id=user_id,
            kind="chat.created" if created else "message.created",
            chat_id=chat.id,
            message_id=answer.id,
        )
    return Turn(chat=chat, question=question, answer=answer, chat_created=created)


RETRYABLE = (Message.Status.ERROR, Message.Status.STOPPED, Message.Status.INTERRUPTED)


def message_stop_orphan(*, message: Message) -> bool:
    """Mark an answer `stopped` when no process is generating it any more."""
    with transaction.atomic():
        stopped = Message.objects.filter(id=message.id, status=Message.Status.STREAMING).update(
            status=Message.Status.STOPPED, heartbeat_at=None
        )
        if stopped:
            publish(
                user_id=message.chat.user_id,
                kind="message.updated",
                chat_id=message.chat_id,
                message_id=message.id,
            )
    return bool(stopped)
