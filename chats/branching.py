"""Versions, selections, deletes and forks on a chat's branch tree.

Every operation here takes the chat's row lock first, re-reads what it changes under that lock
(a caller's instance may be stale), writes with set-based statements over ltree branch paths,
publishes exactly one realtime event and runs in one transaction. The storage design and the
traps these functions avoid are in DESIGN.md section 4 and shared/research/tree-storage.md.

Children of a message are ordered by creation (created_at, id); `selected_child_index` and
`Chat.root_message_index` are positions in that order, so every delete re-points the parent's
selection at the same logical child. A branch's `seq` may have gaps: nothing here moves a row
that stays, and nothing assumes the next message of a branch is at `seq + 1`.

A request may come from a tab that has not seen another tab's change. Each write applies to
the message the user acted on, and one that adds a message selects the whole route to it, so
the result is shown whatever the other tab selected meanwhile. Every write bumps the chat's
`tree_version` exactly once (`_chat_touch`), so a caller that knows the version its page
showed can tell whether the page was current (the new version is that one plus one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from chats.markdown import markdown_render
from chats.models import Branch, Chat, Message
from chats.structure import message_route
from chats.tree import (
    ChatNotFound,
    EmptyText,
    MessageNotInChat,
    MessageStreaming,
    SelectionOutOfRange,
    WrongRole,
    chat_lock,
    message_append,
    next_branch_paths,
)
from chats.tree import TreeError as TreeError  # the base of the errors above, for callers
from chats.versions import ROOTS_SQL
from realtime.events import publish

# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class UserEdit:
    """The new version of a user message and the placeholder its answer streams into."""

    version: Message
    answer: Message


@dataclass(frozen=True)
class DeleteOutcome:
    deleted_count: int
    chat_deleted: bool


@dataclass(frozen=True)
class ChatFork:
    """The new chat, its last message, and the placeholder to answer (edited user forks)."""

    chat: Chat
    message: Message | None
    answer: Message | None


# ---------------------------------------------------------------------------------------------
# Helpers


def _replace_text(parts: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Return `parts` with their text replaced by `text`; files, tool calls etc. are kept.

    The new text takes the place of the first text part, so it stays where the reader saw it.
    """
    replaced: list[dict[str, Any]] = []
    placed = False
    for part in parts:
        if part.get("type") == "text":
            if not placed:
                replaced.append({"type": "text", "text": text})
                placed = True
            continue
        replaced.append(dict(part))
    if not placed:
        replaced.append({"type": "text", "text": text})
    return replaced


def _check_text(text: str, parts: list[dict[str, Any]]) -> None:
    # A message that keeps an attachment may lose its words; one with nothing left may not.
    if not text.strip() and not any(part.get("type") != "text" for part in parts):
        raise EmptyText()


def _lock(*, chat: Chat) -> None:
    """Take the chat's lock; the instance then holds the tree version as it is under it."""
    locked = chat_lock(chat_id=chat.id)
    if locked is None:
        raise ChatNotFound()
    chat.tree_version = locked.tree_version
    chat.root_message_index = locked.root_message_index


def _shown_as_seen(chat: Chat, seen_version: int | None) -> bool:
    """Under the lock: the caller's page showed the chat as it is (no other change since)."""
    return seen_version is not None and seen_version == chat.tree_version


def _locked_message(*, chat: Chat, message: Message) -> Message:
    """Lock the chat and re-read `message` under the lock (seq or parent may have moved)."""
    if message.chat_id != chat.id:
        raise MessageNotInChat()
    _lock(chat=chat)
    current = Message.objects.filter(id=message.id, chat_id=chat.id).first()
    if current is None:
        raise MessageNotInChat()
    return current


def _root_index(*, chat: Chat) -> int | None:
    # Read under the lock: the caller's instance may predate another tab's change.
    index = Chat.objects.filter(id=chat.id).values_list("root_message_index", flat=True).first()
    chat.root_message_index = index
    return index


def _children(*, chat: Chat, parent_id: uuid.UUID | None) -> list[tuple[uuid.UUID, datetime]]:
    """Return a message's children (or the chat's first messages) in creation order."""
    if parent_id is None:
        with connection.cursor() as cursor:
            cursor.execute(ROOTS_SQL, [chat.id])
            return [(row[0], row[1]) for row in cursor.fetchall()]
    rows = Message.objects.filter(parent_id=parent_id)
    return list(rows.order_by("created_at", "id").values_list("id", "created_at"))


def _effective_index(stored: int | None, count: int) -> int | None:
    # The read side shows the newest sibling for a missing or out-of-range selection.
    if count == 0:
        return None
    if stored is None or not 0 <= stored < count:
        return count - 1
    return stored


def _store_selection(
    *, chat: Chat, parent_id: uuid.UUID | None, stored: int | None, index: int | None
) -> None:
    """Select the `index`-th child of the parent (or of the chat), then touch the chat."""
    if parent_id is None:
        chat.root_message_index = index
        _chat_touch(chat=chat, with_root_index=True)
        return
    if stored != index:
        Message.objects.filter(id=parent_id).update(
            selected_child_index=index, updated_at=timezone.now()
        )
    _chat_touch(chat=chat)


def _chat_touch(*, chat: Chat, with_root_index: bool = False) -> None:
    """End of every write: bump updated_at (the sync API pages chats by it) and the tree's
    version, once, with the instance's root selection when it may have changed."""
    now = timezone.now()
    root = ", root_message_index = %(root)s" if with_root_index else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE chats_chat SET updated_at = %(now)s, tree_version = tree_version + 1{root} "  # noqa: S608
            "WHERE id = %(chat)s RETURNING tree_version",
            {"now": now, "root": chat.root_message_index, "chat": chat.id},
        )
        row = cursor.fetchone()
    chat.updated_at = now
    chat.tree_version = row[0] if row else chat.tree_version


def _parent_of(message: Message) -> Message | None:
    return Message.objects.get(id=message.parent_id) if message.parent_id else None


# ---------------------------------------------------------------------------------------------
# Versions


def message_edit_user(
    *, chat: Chat, message: Message, text: str, model_id: str, seen_version: int | None = None
) -> UserEdit:
    """Add an edited version of a user message, selected, with a placeholder for its answer.

    Attachments and other non-text parts are kept. The caller starts the generation into
    `answer`; its context is `ChatTree.ancestors(version.id)`. The whole route to it is
    selected, unless `seen_version` says the page showed the chat as it is (then the message
    was on the shown route, and selecting the new version under its parent is enough).
    """
    with transaction.atomic():
        edited = _locked_message(chat=chat, message=message)
        current = _shown_as_seen(chat, seen_version)
        if edited.role != Message.Role.USER:
            raise WrongRole("Only your own messages can be edited this way.")
        parts = _replace_text(edited.parts, text)
        _check_text(text, parts)
        parent = _parent_of(edited)
        version = message_append(chat=chat, parent=parent, role=Message.Role.USER, parts=parts)
        answer = message_append(
            chat=chat,
            parent=version,
            role=Message.Role.ASSISTANT,
            parts=[],
            model_id=model_id,
            status=Message.Status.STREAMING,
            parent_has_successor=False,
        )
        if not current:
            route_select_locked(chat=chat, message=answer)
        _chat_touch(chat=chat, with_root_index=True)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=answer.id)
    return UserEdit(version=version, answer=answer)


def message_edit_assistant(
    *, chat: Chat, message: Message, text: str, seen_version: int | None = None
) -> Message:
    """Add an edited version of an answer, selected and complete (nothing is generated);
    `seen_version` as for `message_edit_user`."""
    with transaction.atomic():
        current = _locked_message(chat=chat, message=message)
        shown_as_seen = _shown_as_seen(chat, seen_version)
        if current.role != Message.Role.ASSISTANT:
            raise WrongRole("Only answers can be edited this way.")
        parts = _replace_text(current.parts, text)
        _check_text(text, parts)
        parent = _parent_of(current)
        version = message_append(
            chat=chat,
            parent=parent,
            role=Message.Role.ASSISTANT,
            parts=parts,
            model_id=current.model_id,
        )
        # Rendered once, like every finished answer.
        version.html = markdown_render(version.text)
        Message.objects.filter(id=version.id).update(html=version.html)
        if not shown_as_seen:
            route_select_locked(chat=chat, message=version)
        _chat_touch(chat=chat, with_root_index=True)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=version.id)
    return version


def message_edit_in_place(*, message: Message, text: str) -> Message:
    """Replace a message's text without creating a version (the explicit "edit in place")."""
    with transaction.atomic():
        chat = Chat.objects.filter(id=message.chat_id).first()
        if chat is None:
            raise ChatNotFound()
        current = _locked_message(chat=chat, message=message)
        if current.status == Message.Status.STREAMING:
            # The generation's next checkpoint would overwrite the edit.
            raise MessageStreaming()
        parts = _replace_text(current.parts, text)
        _check_text(text, parts)
        current.parts = parts
        current.html = (
            markdown_render(current.text) if current.role == Message.Role.ASSISTANT else ""
        )
        current.save(update_fields=["parts", "html", "updated_at"])
        _chat_touch(chat=chat)
        publish(
            user_id=chat.user_id, kind="message.updated", chat_id=chat.id, message_id=current.id
        )
    return current


def message_regenerate(
    *,
    chat: Chat,
    message: Message,
    model_id: str | None = None,
    seen_version: int | None = None,
) -> Message:
    """Add a new answer beside `message` under the same prompt, selected, to be generated.

    `model_id` answers with another model ("Regenerate with…"); by default the same one.
    `seen_version` as for `message_edit_user`.
    """
    with transaction.atomic():
        current = _locked_message(chat=chat, message=message)
        shown_as_seen = _shown_as_seen(chat, seen_version)
        if current.role != Message.Role.ASSISTANT or current.parent_id is None:
            raise WrongRole("Only an answer to a message can be regenerated.")
        parent = Message.objects.get(id=current.parent_id)
        answer = message_append(
            chat=chat,
            parent=parent,
            role=Message.Role.ASSISTANT,
            parts=[],
            model_id=model_id or current.model_id,
            status=Message.Status.STREAMING,
        )
        if not shown_as_seen:
            route_select_locked(chat=chat, message=answer)
        _chat_touch(chat=chat, with_root_index=True)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=answer.id)
    return answer


# ---------------------------------------------------------------------------------------------
# Selection


# The branches on the route to a message (its branch and the branches it descends from, by
# ltree), root first, each with the seq of the message it was forked at.
_ROUTE_BRANCHES_SQL = """
SELECT b.id, fm.seq FROM chats_branch b LEFT JOIN chats_message fm ON fm.id = b.fork_message_id
WHERE b.chat_id = %s AND b.path @> (SELECT path FROM chats_branch WHERE id = %s)
ORDER BY nlevel(b.path)
"""

# Messages of those branches that have a forked child: the only places on the route where a
# parent has more than one child, so the only selections that may need to change.
_ROUTE_FORK_POINTS_SQL = """
SELECT DISTINCT fm.id, fm.branch_id, fm.seq, fm.selected_child_index
FROM chats_branch f JOIN chats_message fm ON fm.id = f.fork_message_id
WHERE f.parent_branch_id = ANY(%s)
"""


def message_select(
    *, chat: Chat, message: Message, seen_version: int | None = None, sibling: bool = False
) -> uuid.UUID | None:
    """Show `message`: every selection on its route from the first message points at it.

    For "< 2/3 >" that is one selection; for a tree-map jump it may be several. Only the
    selections that change are written. The route is found over the branches (ltree), so the
    cost does not grow with the chat's length, only with its forks along the route. Returns
    the message below which the shown route changed (None: from the first message).

    `sibling`: the page switched a shown message to this version (its "<" and ">" buttons);
    when `seen_version` says the page showed the chat as it is, the parent's selection is the
    only one to change.
    """
    with transaction.atomic():
        current = _locked_message(chat=chat, message=message)
        if sibling and _shown_as_seen(chat, seen_version):
            children = [child for child, _ in _children(chat=chat, parent_id=current.parent_id)]
            _store_selection(
                chat=chat,
                parent_id=current.parent_id,
                stored=_parent_selection(chat=chat, parent_id=current.parent_id),
                index=children.index(current.id),
            )
            publish(
                user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=current.id
            )
            return current.parent_id
        changed_below = route_select_locked(chat=chat, message=current)
        _chat_touch(chat=chat, with_root_index=True)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=current.id)
    return changed_below


def route_select_locked(*, chat: Chat, message: Message) -> uuid.UUID | None:
    """Under the chat's lock: point every selection on the route to `message` (a current row)
    at it.

    Sets `chat.root_message_index`; the caller writes it with `_chat_touch`. Returns the
    highest message whose selection changed (None: the chat's own, or nothing changed above
    `message`'s parent: then `message`'s parent).
    """
    stored_root = _root_index(chat=chat)
    with connection.cursor() as cursor:
        cursor.execute(_ROUTE_BRANCHES_SQL, [chat.id, message.branch_id])
        route = cursor.fetchall()  # [(branch id, seq of its fork message)], root first
        # Where the route leaves each branch: into the next one, or at `message` itself.
        leave_at = {
            branch_id: (route[i + 1][1] if i + 1 < len(route) else message.seq)
            for i, (branch_id, _fork_seq) in enumerate(route)
        }
        next_branch = {route[i][0]: route[i + 1][0] for i in range(len(route) - 1)}
        cursor.execute(_ROUTE_FORK_POINTS_SQL, [list(leave_at)])
        fork_points = {
            row[0]: row[1:]
            for row in cursor.fetchall()
            # Forks below `message` (at it or after it) are not on its route.
            if row[2] < leave_at[row[1]] or (row[2] == leave_at[row[1]] and row[1] != route[-1][0])
        }
    children: dict[uuid.UUID, list[tuple[datetime, uuid.UUID, int]]] = {}
    for parent_id, child_id, created_at, branch_id in Message.objects.filter(
        parent_id__in=list(fork_points)
    ).values_list("parent_id", "id", "created_at", "branch_id"):
        children.setdefault(parent_id, []).append((created_at, child_id, branch_id))
    ids: list[uuid.UUID] = []
    indexes: list[int] = []
    depth = {branch_id: level for level, (branch_id, _fork_seq) in enumerate(route)}
    highest: tuple[int, int, uuid.UUID] | None = None
    for parent_id, (branch_id, seq, stored) in fork_points.items():
        options = sorted(children.get(parent_id, []))
        # The route goes on in the fork point's own branch (its successor, whatever its seq)
        # or into the next branch of the route (that branch's first message).
        on_route = branch_id if seq < leave_at[branch_id] else next_branch[branch_id]
        index = [row[2] for row in options].index(on_route)
        if _effective_index(stored, len(options)) != index:
            ids.append(parent_id)
            indexes.append(index)
            place = (depth[branch_id], seq, parent_id)
            highest = place if highest is None or place < highest else highest
    roots = _children(chat=chat, parent_id=None)
    root_id = (
        Message.objects.filter(branch_id=route[0][0]).order_by("seq").values_list("id", flat=True)
    )[0]
    root_index = [child for child, _ in roots].index(root_id)
    changed_below = highest[2] if highest is not None else message.parent_id
    if _effective_index(stored_root, len(roots)) != root_index:
        chat.root_message_index = root_index
        changed_below = None
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chats_message m SET selected_child_index = v.index, updated_at = %s "
                "FROM unnest(%s::uuid[], %s::int[]) AS v(id, index) WHERE m.id = v.id",
                [timezone.now(), ids, indexes],
            )
    return changed_below


def branch_select(*, chat: Chat, parent_id: uuid.UUID | None, index: int) -> uuid.UUID:
    """Show the `index`-th child of `parent_id` (None: of the chat's first messages).

    Returns the id of the child now shown.
    """
    with transaction.atomic():
        _lock(chat=chat)
        stored: int | None
        if parent_id is None:
            stored = _root_index(chat=chat)
        else:
            found = (
                Message.objects.filter(id=parent_id, chat_id=chat.id)
                .values("selected_child_index")
                .first()
            )
            if found is None:
                raise MessageNotInChat()
            stored = found["selected_child_index"]
        children = _children(chat=chat, parent_id=parent_id)
        if isinstance(index, bool) or not 0 <= index < len(children):
            raise SelectionOutOfRange(
                f"There is no version {index + 1}: this message has {len(children)}."
            )
        _store_selection(chat=chat, parent_id=parent_id, stored=stored, index=index)
        chosen = children[index][0]
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=chosen)
    return chosen


# ---------------------------------------------------------------------------------------------
# Deletes


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
), unlinked AS (
    UPDATE chats_chat SET forked_from_message_id = NULL
    WHERE parent_chat_id = %(chat)s AND forked_from_message_id IN (SELECT id FROM gone)
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
    from chats.services import chat_delete  # services imports tree; keep the cycle lazy

    count = Message.objects.filter(chat_id=chat.id).count()
    chat_delete(chat=chat)
    return DeleteOutcome(deleted_count=count, chat_deleted=True)


def _parent_selection(*, chat: Chat, parent_id: uuid.UUID | None) -> int | None:
    if parent_id is None:
        return _root_index(chat=chat)
    return Message.objects.filter(id=parent_id).values_list("selected_child_index", flat=True).get()


def message_delete_subtree(*, chat: Chat, message: Message) -> DeleteOutcome:
    """Delete this version and everything under it; the parent shows a neighbouring version."""
    with transaction.atomic():
        current = _locked_message(chat=chat, message=message)
        siblings = [child for child, _ in _children(chat=chat, parent_id=current.parent_id)]
        if current.parent_id is None and len(siblings) == 1:
            return _delete_whole_chat(chat=chat)
        stored = _parent_selection(chat=chat, parent_id=current.parent_id)
        shown = _effective_index(stored, len(siblings))
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
        _store_selection(chat=chat, parent_id=current.parent_id, stored=stored, index=index)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id)
    return DeleteOutcome(deleted_count=count, chat_deleted=False)


def message_delete_turn(*, chat: Chat, message: Message) -> DeleteOutcome:
    """Delete every version of this turn (all its siblings) and everything after them."""
    with transaction.atomic():
        current = _locked_message(chat=chat, message=message)
        if current.parent_id is None:
            return _delete_whole_chat(chat=chat)
        parent = Message.objects.get(id=current.parent_id)
        count = _delete_below(
            chat=chat, branch_id=parent.branch_id, from_seq=parent.seq + 1, fork_from_seq=parent.seq
        )
        _store_selection(
            chat=chat, parent_id=parent.id, stored=parent.selected_child_index, index=None
        )
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id)
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
        current = _locked_message(chat=chat, message=message)
        parent_id = current.parent_id
        siblings = _children(chat=chat, parent_id=parent_id)
        kids = _children(chat=chat, parent_id=current.id)
        if parent_id is None and len(siblings) == 1 and not kids:
            return _delete_whole_chat(chat=chat)
        stored = _parent_selection(chat=chat, parent_id=parent_id)
        index = _selection_after_removal(
            siblings=siblings,
            removed=current.id,
            kids=kids,
            shown=_effective_index(stored, len(siblings)),
            shown_kid=_effective_index(current.selected_child_index, len(kids)),
        )
        branch = Branch.objects.get(id=current.branch_id)
        starts_branch = not Message.objects.filter(
            branch_id=branch.id, seq__lt=current.seq
        ).exists()
        has_successor = Message.objects.filter(branch_id=branch.id, seq__gt=current.seq).exists()
        forked = list(
            Branch.objects.filter(fork_message_id=current.id)
            .order_by("created_at", "id")
            .values_list("id", "path")
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chats_chat SET forked_from_message_id = NULL "
                "WHERE parent_chat_id = %s AND forked_from_message_id = %s",
                [chat.id, current.id],
            )
            cursor.execute("DELETE FROM chats_message WHERE id = %s", [current.id])
            cursor.execute(
                "UPDATE chats_message SET parent_id = %s, updated_at = %s WHERE parent_id = %s",
                [parent_id, timezone.now(), current.id],
            )
            if forked and not starts_branch:
                # The parent is in the same branch: the forks stay children of this branch.
                cursor.execute(
                    "UPDATE chats_branch SET fork_message_id = %s WHERE fork_message_id = %s",
                    [parent_id, current.id],
                )
            elif forked:
                _forks_move_up(
                    chat=chat, branch=branch, message_id=current.id, forked=forked,
                    parent_id=parent_id,
                )  # fmt: skip
            if starts_branch and not has_successor:
                cursor.execute("DELETE FROM chats_branch WHERE id = %s", [branch.id])
        _store_selection(chat=chat, parent_id=parent_id, stored=stored, index=index)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id)
    return DeleteOutcome(deleted_count=1, chat_deleted=False)


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


# ---------------------------------------------------------------------------------------------
# Fork

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
       s.html, s.stream_seq, NULL, s.created_at, %(now)s
FROM unnest(%(old)s::uuid[], %(new)s::uuid[], %(parents)s::uuid[], %(seqs)s::int[])
     AS v(old_id, new_id, new_parent, seq)
JOIN chats_message s ON s.id = v.old_id AND s.chat_id = %(source)s
"""


def chat_fork(
    *, chat: Chat, message: Message, edited_text: str | None = None, model_id: str = ""
) -> ChatFork:
    """Start a new chat from `message`: a copy of its route from the first message.

    With `edited_text`, the copy stops at its parent and continues with an edited version of
    `message`; for a user message, `answer` is a placeholder the caller generates into (with
    `model_id`, by default the chat's model). The fork is independent of its source.
    """
    with transaction.atomic():
        current = _locked_message(chat=chat, message=message)
        source = Chat.objects.get(id=chat.id)
        route = message_route(chat_id=source.id, message_id=current.id)
        parts: list[dict[str, Any]] = []
        if edited_text is not None:
            parts = _replace_text(current.parts, edited_text)
            _check_text(edited_text, parts)
            route = route[:-1]
        fork = Chat.objects.create(
            user_id=source.user_id,
            title=source.title,
            settings=source.settings,
            root_message_index=0,
            parent_chat=source,
            forked_from_message_id=current.id,
            fork_depth=source.fork_depth + 1,
        )
        last: Message | None = None
        if route:
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
                        "source": chat.id,
                        "last": len(route) - 1,
                        "now": timezone.now(),
                        "old": route,
                        "new": new_ids,
                        "parents": [None, *new_ids[:-1]],
                        "seqs": list(range(len(route))),
                    },
                )
            last = Message.objects.get(id=new_ids[-1])
        answer: Message | None = None
        if edited_text is not None:
            last = message_append(
                chat=fork,
                parent=last,
                role=current.role,
                parts=parts,
                model_id="" if current.role == Message.Role.USER else current.model_id,
                parent_has_successor=False,
            )
            if current.role == Message.Role.USER:
                answer = message_append(
                    chat=fork,
                    parent=last,
                    role=Message.Role.ASSISTANT,
                    parts=[],
                    model_id=model_id or str(source.settings.get("model", "")),
                    status=Message.Status.STREAMING,
                    parent_has_successor=False,
                )
        # Hook for the archive issue: copy the source chat's pins (ChatPin rows) to `fork` here,
        # in this transaction, once pins exist.
        publish(user_id=fork.user_id, kind="chat.created", chat_id=fork.id)
    return ChatFork(chat=fork, message=last, answer=answer)
