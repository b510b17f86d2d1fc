"""Forks: a new chat that starts as a copy of another chat's route up to a message.

The copy is one set-based insert of the route's messages into a single branch of the new chat;
the fork is independent of its source afterwards (its own tree, its own lock).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from archive.services import chat_pins_copy
from chats.message_files import chat_files_link
from chats.models import Branch, Chat, Message
from chats.structure import message_route
from chats.tree_services import message_append, message_lock, next_branch_paths
from chats.version_services import parts_text_check, parts_with_text, parts_without_files
from realtime.events import publish


@dataclass(frozen=True)
class ChatFork:
    """The new chat, its last message, and the placeholder to answer (edited user forks)."""

    chat: Chat
    message: Message | None
    answer: Message | None


_COPY_ROUTE_SQL = """
INSERT INTO chats_message (
    id, chat_id, branch_id, seq, parent_id, role, parts, model_id, status, error, usage,
    selected_child_index, html, stream_seq, heartbeat_at, created_at, updated_at
)
SELECT v.new_id, %(chat)s, %(branch)s, v.seq, v.new_parent, s.role, s.parts, s.model_id,
       -- A copy has no generation feeding it: a live answer arrives as interrupted.
       CASE WHEN s.status = 'streaming' THEN 'interrupted' ELSE s.status END,
       s.error, s.usage,
       CASE WHEN v.seq < %(last)s THEN 0 END,
       s.html, s.stream_seq, NULL, s.created_at, now()
FROM unnest(%(old)s::uuid[], %(new)s::uuid[], %(parents)s::uuid[], %(seqs)s::int[])
     AS v(old_id, new_id, new_parent, seq)
JOIN chats_message s ON s.id = v.old_id AND s.chat_id = %(source)s
"""


def chat_fork(
    *,
    chat: Chat,
    message: Message,
    edited_text: str | None = None,
    model_id: str = "",
    files: list[dict[str, Any]] | None = None,
) -> ChatFork:
    """Start a new chat from `message`: a copy of its route from the first message.

    With `edited_text`, the copy stops at its parent and continues with an edited version of
    `message`; for a user message, `answer` is a placeholder the caller generates into (with
    `model_id`, by default the chat's model); `files` replaces the edited message's file parts.
    The copies refer to the same attachments (`MessageAttachment` rows, never bytes). The fork
    is independent of its source.
    """
    with transaction.atomic():
        current = message_lock(chat=chat, message=message)
        source = Chat.objects.get(id=chat.id)
        route = message_route(chat_id=source.id, message_id=current.id)
        parts: list[dict[str, Any]] = []
        if edited_text is not None:
            parts = parts_with_text(current.parts, edited_text)
            if files is not None:  # checked by the caller, the kept ones first
                parts = [*parts_without_files(parts), *files]
            parts_text_check(edited_text, parts)
            route = route[:-1]
        fork = Chat.objects.create(
            user_id=source.user_id, title=source.title, settings=source.settings,
            root_message_index=0, parent_chat=source, forked_from_message_id=current.id,
            fork_depth=source.fork_depth + 1,
        )  # fmt: skip
        last = _route_copy(source=source, fork=fork, route=route)
        answer: Message | None = None
        if edited_text is not None:
            last, answer = _edited_append(
                source=source, fork=fork, parent=last, edited=current, parts=parts,
                model_id=model_id,
            )  # fmt: skip
        chat_pins_copy(from_chat_id=source.id, to_chat_id=fork.id)
        chat_files_link(chat_id=fork.id)  # the copies refer to the same attachments
        publish(user_id=fork.user_id, kind="chat.created", chat_id=fork.id)
    return ChatFork(chat=fork, message=last, answer=answer)


def _route_copy(*, source: Chat, fork: Chat, route: list[uuid.UUID]) -> Message | None:
    """Copy the route's messages into the fork's one branch; its last message (None: empty)."""
    if not route:
        return None
    branch = Branch.objects.create(
        chat=fork,
        path=next_branch_paths(chat_id=fork.id, parent_branch_id=None, parent_path=None)[0],
    )
    new_ids = [uuid.uuid4() for _ in route]
    with connection.cursor() as cursor:
        cursor.execute(
            _COPY_ROUTE_SQL,
            {
                "chat": fork.id,
                "branch": branch.id,
                "source": source.id,
                "last": len(route) - 1,
                "old": route,
                "new": new_ids,
                "parents": [None, *new_ids[:-1]],
                "seqs": list(range(len(route))),
            },
        )
    return Message.objects.get(id=new_ids[-1])


def _edited_append(
    *,
    source: Chat,
    fork: Chat,
    parent: Message | None,
    edited: Message,
    parts: list[dict[str, Any]],
    model_id: str,
) -> tuple[Message, Message | None]:
    """The edited message after the copy, and for a question the placeholder of its answer."""
    question = edited.role == Message.Role.USER
    last = message_append(
        chat=fork, parent=parent, role=edited.role, parts=parts,
        model_id="" if question else edited.model_id, parent_has_successor=False,
    )  # fmt: skip
    if not question:
        return last, None
    answer = message_append(
        chat=fork, parent=last, role=Message.Role.ASSISTANT, parts=[],
        model_id=model_id or str(source.settings.get("model", "")),
        status=Message.Status.STREAMING, parent_has_successor=False,
    )  # fmt: skip
    return last, answer
