"""Deletes on a chat's tree: a version with everything under it, a whole turn, or one message.

Each takes the chat's row lock, deletes with set-based statements over ltree branch paths
(nothing that stays is moved: a branch's `seq` may have gaps afterwards), re-points the
parent's selection at the same logical child, publishes one event, in one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from chats.attachment_services import attachments_prune_after_commit
from chats.models import Branch, Chat, Message
from chats.services import chat_delete
from chats.tree import selected_position
from chats.tree_services import (
    children_read,
    message_lock,
    next_branch_paths,
    parent_selection_read,
    selection_store,
)
from realtime.events import publish


@dataclass(frozen=True)
class DeleteOutcome:
    deleted_count: int
    chat_deleted: bool


# Everything below a point of branch B: B's rows from `from_seq` on, and every branch (with the
# branches under it, by ltree) forked at a message of B with seq >= `fork_from_seq`. The seq
# conditions are plain ranges: row comparisons mislead the planner (research note). Forks in
# other chats that pointed at a deleted message keep their parent_chat and lose the message.
_DELETE_BELOW_SQL = """
WITH forked AS (
    SELECT f.path FROM chats_branch f JOIN chats_message fm ON fm.id = f.fork_message_id
    WHERE f.parent_branch_id = %(branch)s AND fm.seq >= %(fork_from)s
), doomed_branches AS (
    SELECT d.id FROM chats_branch d
    WHERE d.chat_id = %(chat)s AND EXISTS (SELECT 1 FROM forked WHERE d.path <@ forked.path)
), gone AS (
    DELETE FROM chats_message
    WHERE chat_id = %(chat)s
      AND ((branch_id = %(branch)s AND seq >= %(from)s)
           OR branch_id IN (SELECT id FROM doomed_branches))
    RETURNING id
), gone_branches AS (
    -- B itself goes when nothing of it stays above `from` (its seq may start above 0).
    DELETE FROM chats_branch
    WHERE id IN (SELECT id FROM doomed_branches)
       OR (id = %(branch)s AND NOT EXISTS (
           SELECT 1 FROM chats_message WHERE branch_id = %(branch)s AND seq < %(from)s))
), unreferenced AS (
    DELETE FROM chats_messageattachment WHERE message_id IN (SELECT id FROM gone)
), unlinked AS (
    UPDATE chats_chat SET forked_from_message_id = NULL
    WHERE parent_chat_id = %(chat)s AND forked_from_message_id IN (SELECT id FROM gone)
), tombstones AS (
    -- Other devices' caches drop them on their next sync (pruned after the retention).
    INSERT INTO chats_messagedeletion (chat_id, message_id)
    SELECT %(chat)s, id FROM gone
)
SELECT count(*) FROM gone
"""


def _delete_below(*, chat: Chat, branch_id: int, from_seq: int, fork_from_seq: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            _DELETE_BELOW_SQL,
            {"chat": chat.id, "branch": branch_id, "from": from_seq, "fork_from": fork_from_seq},
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _delete_whole_chat(*, chat: Chat) -> DeleteOutcome:
    count = Message.objects.filter(chat_id=chat.id).count()
    chat_delete(chat=chat)
    return DeleteOutcome(deleted_count=count, chat_deleted=True)


def message_delete_subtree(*, chat: Chat, message: Message) -> DeleteOutcome:
    """Delete this version and everything under it; the parent shows a neighbouring version."""
    with transaction.atomic():
        current = message_lock(chat=chat, message=message)
        siblings = [child for child, _ in children_read(chat=chat, parent_id=current.parent_id)]
        if current.parent_id is None and len(siblings) == 1:
            return _delete_whole_chat(chat=chat)
        stored = parent_selection_read(chat=chat, parent_id=current.parent_id)
        shown = selected_position(stored, len(siblings))
        position = siblings.index(current.id)
        remaining = len(siblings) - 1
        if remaining == 0:
            index = None
        elif shown == position:
            index = min(position, remaining - 1)  # the next version, or the previous if last
        elif shown is not None and shown > position:
            index = shown - 1
        else:
            index = shown
        count = _delete_below(
            chat=chat, branch_id=current.branch_id, from_seq=current.seq, fork_from_seq=current.seq
        )
        selection_store(chat=chat, parent_id=current.parent_id, stored=stored, index=index)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id)
        attachments_prune_after_commit(owner_id=chat.user_id)
    return DeleteOutcome(deleted_count=count, chat_deleted=False)


def message_delete_turn(*, chat: Chat, message: Message) -> DeleteOutcome:
    """Delete every version of this turn (all its siblings) and everything after them."""
    with transaction.atomic():
        current = message_lock(chat=chat, message=message)
        if current.parent_id is None:
            return _delete_whole_chat(chat=chat)
        parent = Message.objects.get(id=current.parent_id)
        count = _delete_below(
            chat=chat, branch_id=parent.branch_id, from_seq=parent.seq + 1, fork_from_seq=parent.seq
        )
        selection_store(
            chat=chat, parent_id=parent.id, stored=parent.selected_child_index, index=None
        )
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id)
        attachments_prune_after_commit(owner_id=chat.user_id)
    return DeleteOutcome(deleted_count=count, chat_deleted=False)


def message_delete_single(*, chat: Chat, message: Message) -> DeleteOutcome:
    """Delete only this message; its children move up to its parent. Nothing else moves.

    Its in-branch successor (whatever its seq) now follows the parent, and branches forked at
    it re-attach to the parent. The parent keeps showing the same logical child: if that was
    this message, the child this message showed. Rows written: the message, its children's
    parent links, the parent's selection and the chat; only when the message began its branch
    and had branches forked at it do those branches' paths move under the parent's branch.
    """
    with transaction.atomic():
        current = message_lock(chat=chat, message=message)
        parent_id = current.parent_id
        siblings = children_read(chat=chat, parent_id=parent_id)
        kids = children_read(chat=chat, parent_id=current.id)
        if parent_id is None and len(siblings) == 1 and not kids:
            return _delete_whole_chat(chat=chat)
        stored = parent_selection_read(chat=chat, parent_id=parent_id)
        index = _selection_after_removal(
            siblings=siblings,
            removed=current.id,
            kids=kids,
            shown=selected_position(stored, len(siblings)),
            shown_kid=selected_position(current.selected_child_index, len(kids)),
        )
        _message_unlink(chat=chat, message=current)
        selection_store(chat=chat, parent_id=parent_id, stored=stored, index=index)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id)
        attachments_prune_after_commit(owner_id=chat.user_id)
    return DeleteOutcome(deleted_count=1, chat_deleted=False)


def _message_unlink(*, chat: Chat, message: Message) -> None:
    """Delete one message and attach what hung below it (children, forked branches) to its
    parent; the branch goes too when the message was all of it."""
    parent_id = message.parent_id
    branch = Branch.objects.get(id=message.branch_id)
    starts_branch = not Message.objects.filter(branch_id=branch.id, seq__lt=message.seq).exists()
    has_successor = Message.objects.filter(branch_id=branch.id, seq__gt=message.seq).exists()
    forked = list(
        Branch.objects.filter(fork_message_id=message.id)
        .order_by("created_at", "id")
        .values_list("id", "path")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chats_chat SET forked_from_message_id = NULL "
            "WHERE parent_chat_id = %s AND forked_from_message_id = %s",
            [chat.id, message.id],
        )
        cursor.execute("DELETE FROM chats_messageattachment WHERE message_id = %s", [message.id])
        cursor.execute(
            "WITH gone AS (DELETE FROM chats_message WHERE id = %s RETURNING chat_id, id) "
            "INSERT INTO chats_messagedeletion (chat_id, message_id) SELECT chat_id, id FROM gone",
            [message.id],
        )
        cursor.execute(
            "UPDATE chats_message SET parent_id = %s, updated_at = now() WHERE parent_id = %s",
            [parent_id, message.id],
        )
        if forked and not starts_branch:
            # The parent is in the same branch: the forks stay children of this branch.
            cursor.execute(
                "UPDATE chats_branch SET fork_message_id = %s WHERE fork_message_id = %s",
                [parent_id, message.id],
            )
        elif forked:
            _forks_move_up(
                chat=chat, branch=branch, message_id=message.id, forked=forked,
                parent_id=parent_id,
            )  # fmt: skip
        if starts_branch and not has_successor:
            cursor.execute("DELETE FROM chats_branch WHERE id = %s", [branch.id])


def _selection_after_removal(
    *,
    siblings: list[tuple[uuid.UUID, datetime]],
    removed: uuid.UUID,
    kids: list[tuple[uuid.UUID, datetime]],
    shown: int | None,
    shown_kid: int | None,
) -> int | None:
    """The parent's selection once `removed` is gone and its `kids` are the parent's children.

    The same logical child stays shown: another sibling if one was, else the child the removed
    message showed, else a neighbour of the removed one.
    """
    sibling_ids = [child for child, _ in siblings]
    position = sibling_ids.index(removed)
    merged = sorted(
        [row for row in siblings if row[0] != removed] + kids, key=lambda row: (row[1], row[0])
    )
    merged_ids = [child for child, _ in merged]
    if shown != position:
        return merged_ids.index(sibling_ids[shown]) if shown is not None else None
    if kids:
        return merged_ids.index(kids[shown_kid or 0][0])
    return min(position, len(merged_ids) - 1) if merged_ids else None


def _forks_move_up(
    *,
    chat: Chat,
    branch: Branch,
    message_id: uuid.UUID,
    forked: list[tuple[int, str]],
    parent_id: uuid.UUID | None,
) -> None:
    """The deleted message began its branch, so its parent lives in the parent branch (or
    there is none): the branches forked at it, and the branches under them, move there."""
    parent_path = (
        str(Branch.objects.filter(id=branch.parent_branch_id).values_list("path", flat=True).get())
        if branch.parent_branch_id
        else None
    )
    new_paths = next_branch_paths(
        chat_id=chat.id,
        parent_branch_id=branch.parent_branch_id,
        parent_path=parent_path,
        count=len(forked),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE chats_branch b SET path = CASE
                WHEN nlevel(b.path) > nlevel(moved.old_path)
                THEN moved.new_path || subpath(b.path, nlevel(moved.old_path))
                ELSE moved.new_path END
            FROM unnest(%s::ltree[], %s::ltree[]) AS moved(old_path, new_path)
            WHERE b.chat_id = %s AND b.path <@ moved.old_path
            """,
            [[str(path) for _, path in forked], new_paths, chat.id],
        )
        cursor.execute(
            "UPDATE chats_branch SET fork_message_id = %s, parent_branch_id = %s "
            "WHERE fork_message_id = %s",
            [parent_id, branch.parent_branch_id, message_id],
        )
