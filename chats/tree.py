"""The conversation tree: structural writes (under the chat's row lock) and the tree read.

Callers run the writes inside `transaction.atomic()` after `chat_lock`; without the lock,
concurrent appends and alternatives were shown to corrupt trees (research/tree-storage.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from chats.models import Branch, Chat, Message

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def chat_lock(*, chat_id: uuid.UUID) -> None:
    """Take the chat's row lock; every structural write holds it until commit."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM chats_chat WHERE id = %s FOR NO KEY UPDATE", [chat_id])


def _label(number: int) -> str:
    digits = []
    for _ in range(Branch.LABEL_WIDTH):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    if number:
        raise ValueError("too many sibling branches")
    return "".join(reversed(digits))


def _next_branch_path(*, chat_id: uuid.UUID, parent_branch: Branch | None) -> str:
    """Return the parent's path plus the largest existing child label + 1 (never reuse one)."""
    last = (
        Branch.objects.filter(chat_id=chat_id, parent_branch=parent_branch)
        .order_by("-path")
        .values_list("path", flat=True)
        .first()
    )
    number = int(str(last).rsplit(".", 1)[-1], 36) + 1 if last else 0
    label = _label(number)
    return f"{parent_branch.path}.{label}" if parent_branch else label


def message_append(
    *,
    chat: Chat,
    parent: Message | None,
    role: str,
    parts: list[dict[str, Any]],
    model_id: str = "",
    status: str = Message.Status.COMPLETE,
    parent_has_successor: bool | None = None,
) -> Message:
    """Add a message under `parent` (None: a first message) and make it the selected child.

    Under the last message of a branch it continues the branch; under a message that already
    has an in-branch successor it starts a new branch forked there. Nothing existing moves.
    `parent_has_successor=False` skips a query when the caller just created `parent`.
    """
    now = timezone.now()
    heartbeat = now if status == Message.Status.STREAMING else None
    if parent is None:
        path = _next_branch_path(chat_id=chat.id, parent_branch=None)
        branch = Branch.objects.create(chat=chat, parent_branch=None, fork_message=None, path=path)
        message = Message.objects.create(
            chat=chat, branch=branch, seq=0, parent=None, role=role, parts=parts,
            model_id=model_id, status=status, heartbeat_at=heartbeat,
        )  # fmt: skip
        roots = Message.objects.filter(chat=chat, parent__isnull=True).count()
        chat.root_message_index = roots - 1
        return message

    if parent_has_successor is None:
        parent_has_successor = Message.objects.filter(
            branch_id=parent.branch_id, seq=parent.seq + 1
        ).exists()
    forked_count = Branch.objects.filter(fork_message=parent).count()
    if not parent_has_successor:
        branch_id, seq = parent.branch_id, parent.seq + 1
    else:
        parent_branch = Branch.objects.get(id=parent.branch_id)
        path = _next_branch_path(chat_id=chat.id, parent_branch=parent_branch)
        branch = Branch.objects.create(
            chat=chat, parent_branch=parent_branch, fork_message=parent, path=path
        )
        branch_id, seq = branch.id, 0
    message = Message.objects.create(
        chat=chat, branch_id=branch_id, seq=seq, parent=parent, role=role, parts=parts,
        model_id=model_id, status=status, heartbeat_at=heartbeat,
    )  # fmt: skip
    # The new child is the newest, so it sits after every existing child.
    children_before = int(parent_has_successor) + forked_count
    Message.objects.filter(id=parent.id).update(selected_child_index=children_before)
    parent.selected_child_index = children_before
    return message


@dataclass
class ChatTree:
    """A chat's messages as a tree: structure only (content is loaded for what is shown)."""

    parent_of: dict[uuid.UUID, uuid.UUID | None]
    children: dict[uuid.UUID | None, list[uuid.UUID]]
    selected: dict[uuid.UUID, int | None]
    root_index: int | None
    roles: dict[uuid.UUID, str] = field(default_factory=dict)
    statuses: dict[uuid.UUID, str] = field(default_factory=dict)

    def _pick(self, options: Sequence[uuid.UUID], index: int | None) -> uuid.UUID:
        # An out-of-range (or missing) selection falls back to the newest sibling.
        if index is None or not 0 <= index < len(options):
            return options[-1]
        return options[index]

    def active_path(self) -> list[uuid.UUID]:
        """Return the shown route from a first message to a leaf, following the selections."""
        path: list[uuid.UUID] = []
        options = self.children.get(None, [])
        index = self.root_index
        while options:
            chosen = self._pick(options, index)
            path.append(chosen)
            options = self.children.get(chosen, [])
            index = self.selected.get(chosen)
        return path

    def ancestors(self, message_id: uuid.UUID) -> list[uuid.UUID]:
        """Return the route from a first message down to `message_id`, inclusive."""
        route = [message_id]
        parent = self.parent_of.get(message_id)
        while parent is not None:
            route.append(parent)
            parent = self.parent_of.get(parent)
        route.reverse()
        return route

    def siblings(self, message_id: uuid.UUID) -> list[uuid.UUID]:
        return self.children.get(self.parent_of.get(message_id), [])

    def __len__(self) -> int:
        return len(self.parent_of)


def chat_tree_build(
    rows: Iterable[tuple[uuid.UUID, uuid.UUID | None, datetime, int | None, str, str]],
    *,
    root_index: int | None,
) -> ChatTree:
    """Build the tree from (id, parent_id, created_at, selected_child_index, role, status) rows."""
    ordered = sorted(rows, key=lambda row: (row[2], row[0]))  # children in creation order
    tree = ChatTree(parent_of={}, children={}, selected={}, root_index=root_index)
    for message_id, parent_id, _created, selected, role, status in ordered:
        tree.parent_of[message_id] = parent_id
        tree.children.setdefault(parent_id, []).append(message_id)
        tree.selected[message_id] = selected
        tree.roles[message_id] = role
        tree.statuses[message_id] = status
    return tree


def chat_tree_load(*, chat: Chat) -> ChatTree:
    """Load a chat's tree in one query (structure columns only), built without recursion."""
    rows = Message.objects.filter(chat_id=chat.id).values_list(
        "id", "parent_id", "created_at", "selected_child_index", "role", "status"
    )
    return chat_tree_build(rows, root_index=chat.root_message_index)


def messages_by_id(*, ids: Sequence[uuid.UUID]) -> Mapping[uuid.UUID, Message]:
    return {message.id: message for message in Message.objects.filter(id__in=ids)}
