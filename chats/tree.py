"""The conversation tree: structural writes (under the chat's row lock) and the tree read.

Callers run the writes inside `transaction.atomic()` after `chat_lock`; without the lock,
concurrent appends and alternatives were shown to corrupt trees (research/tree-storage.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.db import connection
from django.utils import timezone

from chats.models import Branch, Chat, Message

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------------------------
# Errors of tree operations: each has a stable code for the JSON API and a sentence for the
# HTML partial. Raised before anything is written, or inside the transaction that rolls back.


class TreeError(Exception):
    """A tree operation was refused; nothing was changed."""

    code: ClassVar[str] = "tree_error"
    default_message: ClassVar[str] = "This change to the conversation is not possible."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class ChatNotFound(TreeError):
    code = "chat_not_found"
    default_message = "This chat no longer exists."


class MessageNotInChat(TreeError):
    code = "message_not_in_chat"
    default_message = "This message is not part of this chat (or no longer exists)."


class WrongRole(TreeError):
    code = "wrong_role"
    default_message = "This operation does not apply to this kind of message."


class SelectionOutOfRange(TreeError):
    code = "selection_out_of_range"
    default_message = "There is no version with that number."


class EmptyText(TreeError):
    code = "empty_text"
    default_message = "The edited message is empty."


class MessageStreaming(TreeError):
    code = "message_streaming"
    default_message = "This message is still being generated."


@dataclass(frozen=True)
class LockedChat:
    """The chat's row lock is held; what its row says under the lock (current, unlike any
    copy the caller loaded before)."""

    tree_version: int
    root_message_index: int | None


def chat_lock(*, chat_id: uuid.UUID) -> LockedChat | None:
    """Take the chat's row lock; every structural write holds it until commit.

    Its own statement, before anything the write depends on is read: under READ COMMITTED a
    statement that waited for the lock still sees other rows as they were before the wait,
    so reads made in the locking statement could be stale. Returns None when the chat no
    longer exists (deleted by a writer that held the lock).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tree_version, root_message_index FROM chats_chat WHERE id = %s "
            "FOR NO KEY UPDATE",
            [chat_id],
        )
        row = cursor.fetchone()
    return LockedChat(*row) if row is not None else None


def _label(number: int) -> str:
    digits = []
    for _ in range(Branch.LABEL_WIDTH):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    if number:
        raise ValueError("too many sibling branches")
    return "".join(reversed(digits))


def first_branch_path() -> str:
    """The path of a new chat's first root branch (it has no branch yet: nothing to read)."""
    return _label(0)


def next_branch_paths(
    *, chat_id: uuid.UUID, parent_branch_id: int | None, parent_path: str | None, count: int = 1
) -> list[str]:
    """Return `count` fresh child paths: the largest existing child label + 1, + 2, ….

    Never the number of children: after a delete that would reuse a label and collide.
    """
    last = (
        Branch.objects.filter(chat_id=chat_id, parent_branch_id=parent_branch_id)
        .order_by("-path")
        .values_list("path", flat=True)
        .first()
    )
    start = int(str(last).rsplit(".", 1)[-1], 36) + 1 if last else 0
    labels = [_label(start + offset) for offset in range(count)]
    return [f"{parent_path}.{label}" if parent_path else label for label in labels]


def _next_branch_path(*, chat_id: uuid.UUID, parent_branch: Branch | None) -> str:
    return next_branch_paths(
        chat_id=chat_id,
        parent_branch_id=parent_branch.id if parent_branch else None,
        parent_path=str(parent_branch.path) if parent_branch else None,
    )[0]


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

    Under the last message of a branch it continues the branch (after the largest seq: the
    parent's, since it has no successor); under a message that already has an in-branch
    successor it starts a new branch forked there. Nothing existing moves.
    `parent` is re-read under the lock (MessageNotInChat if it is gone);
    `parent_has_successor=False` skips that query when the caller just created `parent`.
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
        # Every root branch starts with one first message; counting the chat's few branches
        # avoids scanning all its messages for a null parent.
        roots = Branch.objects.filter(chat_id=chat.id, parent_branch__isnull=True).count()
        chat.root_message_index = roots - 1
        return message

    if parent_has_successor is None:
        # Re-read the parent under the lock: since the caller loaded it, another request may
        # have removed it. Same single query as the successor check (seq may have gaps).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT p.branch_id, p.seq, EXISTS (SELECT 1 FROM chats_message s "
                "WHERE s.branch_id = p.branch_id AND s.seq > p.seq) "
                "FROM chats_message p WHERE p.id = %s AND p.chat_id = %s",
                [parent.id, chat.id],
            )
            row = cursor.fetchone()
        if row is None:
            raise MessageNotInChat()
        parent.branch_id, parent.seq, parent_has_successor = row
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


@dataclass(frozen=True)
class PathStep:
    """A message on the active path with its place among its siblings ("< index+1/count >")."""

    message_id: uuid.UUID
    index: int
    count: int


@dataclass(frozen=True)
class TreeMapNode:
    """One node of the compact tree map: rows by depth, columns by leaf order."""

    message_id: uuid.UUID
    parent_id: uuid.UUID | None
    depth: int
    index: int  # position among its siblings
    sibling_count: int
    column: int  # leftmost leaf column of its subtree, for drawing
    role: str
    status: str
    on_active_path: bool


@dataclass
class ChatTree:
    """A chat's messages as a tree: structure only (content is loaded for what is shown)."""

    parent_of: dict[uuid.UUID, uuid.UUID | None]
    children: dict[uuid.UUID | None, list[uuid.UUID]]
    selected: dict[uuid.UUID, int | None]
    root_index: int | None
    roles: dict[uuid.UUID, str] = field(default_factory=dict)
    statuses: dict[uuid.UUID, str] = field(default_factory=dict)
    _index_of: dict[uuid.UUID, int] | None = field(default=None, repr=False)

    def _pick(self, options: Sequence[uuid.UUID], index: int | None) -> uuid.UUID:
        # An out-of-range (or missing) selection falls back to the newest sibling.
        if index is None or not 0 <= index < len(options):
            return options[-1]
        return options[index]

    def selected_child(self, parent_id: uuid.UUID | None) -> uuid.UUID | None:
        """Return the child shown under `parent_id` (None: the shown first message)."""
        options = self.children.get(parent_id, [])
        if not options:
            return None
        index = self.root_index if parent_id is None else self.selected.get(parent_id)
        return self._pick(options, index)

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

    def position(self, message_id: uuid.UUID) -> PathStep:
        """Return where `message_id` sits among its siblings (index and count)."""
        if self._index_of is None:
            # One pass over all children lists instead of a list.index() per lookup.
            self._index_of = {
                child: index
                for options in self.children.values()
                for index, child in enumerate(options)
            }
        return PathStep(
            message_id=message_id,
            index=self._index_of[message_id],
            count=len(self.siblings(message_id)),
        )

    def active_path_steps(self) -> list[PathStep]:
        """Return the active path with each message's sibling position, for "< 2/3 >"."""
        return [self.position(message_id) for message_id in self.active_path()]

    def descendants(self, message_id: uuid.UUID) -> list[uuid.UUID]:
        """Return every message under `message_id` (not itself), parents before children."""
        found: list[uuid.UUID] = []
        stack = list(reversed(self.children.get(message_id, [])))
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(self.children.get(current, [])))
        return found

    def tree_map(self) -> list[TreeMapNode]:
        """Return every message as a map node in depth-first order, without recursion.

        Leaves take consecutive columns from left to right; a parent sits above the column of
        its first leaf, so a linear run is a straight vertical line.
        """
        active = set(self.active_path())
        order: list[tuple[uuid.UUID, int]] = []  # (message, depth), parents before children
        columns: dict[uuid.UUID, int] = {}
        # Nodes seen since the last leaf: their first leaf is the next one placed.
        waiting: list[uuid.UUID] = []
        leaves = 0
        stack = [(root, 0) for root in reversed(self.children.get(None, []))]
        while stack:
            message_id, depth = stack.pop()
            order.append((message_id, depth))
            waiting.append(message_id)
            kids = self.children.get(message_id, [])
            if kids:
                stack.extend((child, depth + 1) for child in reversed(kids))
                continue
            for waiting_id in waiting:
                columns[waiting_id] = leaves
            waiting.clear()
            leaves += 1
        nodes = []
        for message_id, depth in order:
            step = self.position(message_id)
            nodes.append(
                TreeMapNode(
                    message_id=message_id,
                    parent_id=self.parent_of.get(message_id),
                    depth=depth,
                    index=step.index,
                    sibling_count=step.count,
                    column=columns[message_id],
                    role=self.roles.get(message_id, ""),
                    status=self.statuses.get(message_id, ""),
                    on_active_path=message_id in active,
                )
            )
        return nodes

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


def chat_forks(*, chat: Chat) -> list[Chat]:
    """Return the chats forked from `chat`, oldest first."""
    return list(Chat.objects.filter(parent_chat_id=chat.id).order_by("created_at", "id"))


def chat_lineage(*, chat: Chat) -> list[Chat]:
    """Return the chats `chat` descends from by forks, the original first, in one query."""
    ancestors = Chat.objects.raw(
        """
        WITH RECURSIVE lineage(id, parent_chat_id, level) AS (
            SELECT id, parent_chat_id, 0 FROM chats_chat WHERE id = %s
            UNION ALL
            SELECT c.id, c.parent_chat_id, l.level + 1
            FROM chats_chat c JOIN lineage l ON c.id = l.parent_chat_id
            WHERE l.level < 1000
        )
        SELECT c.* FROM chats_chat c JOIN lineage l ON c.id = l.id
        WHERE l.level > 0 AND c.user_id = %s
        ORDER BY l.level DESC
        """,
        [chat.id, chat.user_id],
    )
    return list(ancestors)
