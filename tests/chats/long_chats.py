"""Long chats for tests, written in bulk: a route of `count` messages in one root branch, with
an older-looking alternative beside every `alternative_every`-th message (a branch of its own
forked at that message's parent, as the design stores a second version)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from chats.models import Branch, Chat, Message
from chats.tree_services import first_branch_path, next_branch_paths


@dataclass(frozen=True)
class LongChat:
    chat: Chat
    route: list[uuid.UUID]  # the shown route, first message first
    alternatives: dict[int, uuid.UUID]  # route position → the other version beside it


def long_chat_create(*, user_id: uuid.UUID, count: int, alternative_every: int = 0) -> LongChat:
    chat = Chat.objects.create(user_id=user_id, title=f"{count} messages", root_message_index=0)
    root = Branch.objects.create(chat=chat, path=first_branch_path())
    start = timezone.now() - timedelta(days=1)
    messages: list[Message] = []
    for seq in range(count):
        role = Message.Role.USER if seq % 2 == 0 else Message.Role.ASSISTANT
        text = f"Message {seq} says something about the trip."
        messages.append(
            Message(
                id=uuid.uuid4(), chat=chat, branch=root, seq=seq,
                parent_id=messages[-1].id if messages else None, role=role,
                parts=[{"type": "text", "text": text}],
                html=f"<p>{text}</p>" if role == Message.Role.ASSISTANT else "",
                selected_child_index=0 if seq + 1 < count else None,
                created_at=start + timedelta(seconds=seq),
            )
        )  # fmt: skip
    Message.objects.bulk_create(messages, batch_size=2000)
    alternatives: dict[int, uuid.UUID] = {}
    extra: list[Message] = []
    if alternative_every:
        forks = [seq for seq in range(alternative_every, count, alternative_every)]
        paths = next_branch_paths(
            chat_id=chat.id, parent_branch_id=root.id, parent_path=root.path, count=len(forks)
        )
        branches = Branch.objects.bulk_create(
            Branch(chat=chat, parent_branch=root, fork_message_id=messages[seq - 1].id, path=path)
            for seq, path in zip(forks, paths, strict=True)
        )
        for seq, branch in zip(forks, branches, strict=True):
            main = messages[seq]
            other = Message(
                id=uuid.uuid4(), chat=chat, branch=branch, seq=0, parent_id=messages[seq - 1].id,
                role=main.role, parts=[{"type": "text", "text": f"Another take on {seq}."}],
                html=f"<p>Another take on {seq}.</p>" if main.role == "assistant" else "",
                created_at=main.created_at + timedelta(milliseconds=500),
            )  # fmt: skip
            extra.append(other)
            alternatives[seq] = other.id
    Message.objects.bulk_create(extra, batch_size=2000)
    # auto_now_add stamped them all alike: the creation order is the one written above.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chats_message m SET created_at = v.stamp "
            "FROM unnest(%s::uuid[], %s::timestamptz[]) AS v(id, stamp) WHERE m.id = v.id",
            [[m.id for m in messages + extra], [m.created_at for m in messages + extra]],
        )
    return LongChat(chat=chat, route=[m.id for m in messages], alternatives=alternatives)
