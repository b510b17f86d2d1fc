"""The tree's shared writes: the chat's row lock, branch paths, appending a message, storing a
selection and touching the chat (its `tree_version`).

Callers run these inside `transaction.atomic()` after `chat_lock`; without the lock,
concurrent appends and alternatives corrupt trees (the HTTP concurrency suite shows it by
serving without the lock: tests/chats/test_tree_http_concurrency.py). Every
structural write ends with exactly one `chat_touch`, so a page that knows the version it
showed can tell whether it was current.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from chats.errors import ChatNotFound, MessageNotInChat
from chats.models import Branch, Chat, Message
from chats.versions import ROOTS_SQL
from vero.lib.db import TransactionNow

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


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
    heartbeat = timezone.now() if status == Message.Status.STREAMING else None
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
        parent_has_successor = _parent_reread(chat=chat, parent=parent)
    forked_count = Branch.objects.filter(fork_message=parent).count()
    branch_id, seq = _place_under(chat=chat, parent=parent, has_successor=parent_has_successor)
    message = Message.objects.create(
        chat=chat, branch_id=branch_id, seq=seq, parent=parent, role=role, parts=parts,
        model_id=model_id, status=status, heartbeat_at=heartbeat,
    )  # fmt: skip
    # The new child is the newest, so it sits after every existing child.
    children_before = int(parent_has_successor) + forked_count
    Message.objects.filter(id=parent.id).update(selected_child_index=children_before)
    parent.selected_child_index = children_before
    return message


def _parent_reread(*, chat: Chat, parent: Message) -> bool:
    """Re-read the parent under the lock (since the caller loaded it, another request may
    have removed it): its place, and whether its branch goes on after it (seq may have gaps)."""
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
    parent.branch_id, parent.seq, has_successor = row
    return bool(has_successor)


def _place_under(*, chat: Chat, parent: Message, has_successor: bool) -> tuple[int, int]:
    """Where a new child of `parent` goes: after it in its branch (the parent ends its
    branch), or first in a new branch forked at it."""
    if not has_successor:
        return parent.branch_id, parent.seq + 1
    parent_branch = Branch.objects.get(id=parent.branch_id)
    path = _next_branch_path(chat_id=chat.id, parent_branch=parent_branch)
    branch = Branch.objects.create(
        chat=chat, parent_branch=parent_branch, fork_message=parent, path=path
    )
    return branch.id, 0


def chat_lock_into(*, chat: Chat) -> None:
    """Take the chat's lock; the instance then holds the tree version as it is under it."""
    locked = chat_lock(chat_id=chat.id)
    if locked is None:
        raise ChatNotFound()
    chat.tree_version = locked.tree_version
    chat.root_message_index = locked.root_message_index


def shown_as_seen(chat: Chat, seen_version: int | None) -> bool:
    """Under the lock: the caller's page showed the chat as it is (no other change since)."""
    return seen_version is not None and seen_version == chat.tree_version


def message_lock(*, chat: Chat, message: Message) -> Message:
    """Lock the chat and re-read `message` under the lock (seq or parent may have moved)."""
    if message.chat_id != chat.id:
        raise MessageNotInChat()
    chat_lock_into(chat=chat)
    current = Message.objects.filter(id=message.id, chat_id=chat.id).first()
    if current is None:
        raise MessageNotInChat()
    return current


def root_index_read(*, chat: Chat) -> int | None:
    # Read under the lock: the caller's instance may predate another tab's change.
    index = Chat.objects.filter(id=chat.id).values_list("root_message_index", flat=True).first()
    chat.root_message_index = index
    return index


def children_read(*, chat: Chat, parent_id: uuid.UUID | None) -> list[tuple[uuid.UUID, datetime]]:
    """Return a message's children (or the chat's first messages) in creation order."""
    if parent_id is None:
        with connection.cursor() as cursor:
            cursor.execute(ROOTS_SQL, [chat.id])
            return [(row[0], row[1]) for row in cursor.fetchall()]
    rows = Message.objects.filter(parent_id=parent_id)
    return list(rows.order_by("created_at", "id").values_list("id", "created_at"))


def selection_store(
    *, chat: Chat, parent_id: uuid.UUID | None, stored: int | None, index: int | None
) -> None:
    """Select the `index`-th child of the parent (or of the chat), then touch the chat."""
    if parent_id is None:
        chat.root_message_index = index
        chat_touch(chat=chat, with_root_index=True)
        return
    if stored != index:
        Message.objects.filter(id=parent_id).update(
            selected_child_index=index, updated_at=TransactionNow()
        )
    chat_touch(chat=chat)


def chat_touch(*, chat: Chat, with_root_index: bool = False) -> None:
    """End of every write: bump updated_at (the sync API pages chats by it) and the tree's
    version, once, with the instance's root selection when it may have changed."""
    root = ", root_message_index = %(root)s" if with_root_index else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE chats_chat SET updated_at = now(), tree_version = tree_version + 1{root} "  # noqa: S608
            "WHERE id = %(chat)s RETURNING tree_version, updated_at",
            {"root": chat.root_message_index, "chat": chat.id},
        )
        row = cursor.fetchone()
    if row is not None:
        chat.tree_version, chat.updated_at = row


# Only chats no tree write holds: such a write may be waiting for a message row the caller has
# locked, and waiting for its chat here would deadlock the two. That write stamps the chat
# itself when it commits.
_CHATS_TOUCH_SQL = """
UPDATE chats_chat SET updated_at = now()
WHERE id IN (SELECT id FROM chats_chat WHERE id = ANY(%s) FOR NO KEY UPDATE SKIP LOCKED)
"""


def chats_touch_unlocked(*, chat_ids: list[uuid.UUID]) -> None:
    """Stamp chats whose messages changed outside their tree (an answer stopped or interrupted)
    so the cache sync finds them; the tree version stays (nothing structural changed)."""
    with connection.cursor() as cursor:
        cursor.execute(_CHATS_TOUCH_SQL, [chat_ids])


def parent_selection_read(*, chat: Chat, parent_id: uuid.UUID | None) -> int | None:
    if parent_id is None:
        return root_index_read(chat=chat)
    return Message.objects.filter(id=parent_id).values_list("selected_child_index", flat=True).get()
