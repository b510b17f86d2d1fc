"""Versions and selections: edit a message into a new version (or in place), regenerate an
answer, and choose which version is shown.

Every operation takes the chat's row lock first, re-reads what it changes under that lock (a
caller's instance may be stale), publishes exactly one realtime event and runs in one
transaction. Children of a message are ordered by creation (created_at, id);
`selected_child_index` and `Chat.root_message_index` are positions in that order.

A request may come from a tab that has not seen another tab's change. Each write applies to
the message the user acted on, and one that adds a message selects the whole route to it
(`route_select_locked`), so the result is shown whatever the other tab selected meanwhile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from chats.errors import (
    ChatNotFound,
    EmptyText,
    MessageNotInChat,
    MessageStreaming,
    SelectionOutOfRange,
    WrongRole,
)
from chats.markdown import markdown_render
from chats.message_files import file_parts_of, message_files_link
from chats.models import Chat, Message
from chats.tree import selected_position
from chats.tree_services import (
    chat_lock_into,
    chat_touch,
    children_read,
    message_append,
    message_lock,
    parent_selection_read,
    root_index_read,
    selection_store,
    shown_as_seen,
)
from realtime.events import publish


@dataclass(frozen=True)
class UserEdit:
    """The new version of a user message and the placeholder its answer streams into."""

    version: Message
    answer: Message


def parts_with_text(parts: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Return `parts` with their text replaced by `text`; files, tool calls etc. are kept.

    The new text takes the place of the last text part: in an answer that called tools, the
    text after the calls is the answer the reader saw, and the edit stays the answer to them
    (the calls and their results keep their order before it).
    """
    last = max((i for i, part in enumerate(parts) if part.get("type") == "text"), default=None)
    replaced: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        if part.get("type") == "text":
            if index == last:
                replaced.append({"type": "text", "text": text})
            continue
        replaced.append(dict(part))
    if last is None:
        replaced.append({"type": "text", "text": text})
    return replaced


def parts_text_check(text: str, parts: list[dict[str, Any]]) -> None:
    # A message that keeps an attachment may lose its words; one with nothing left may not.
    if not text.strip() and not any(part.get("type") != "text" for part in parts):
        raise EmptyText()


def _parent_of(message: Message) -> Message | None:
    return Message.objects.get(id=message.parent_id) if message.parent_id else None


@dataclass(frozen=True)
class _Edit:
    message: Message  # as it is under the lock
    page_current: bool  # the page that asked showed the chat as it is
    parts: list[dict[str, Any]]  # the new version's
    parent: Message | None


def _edit_locked(
    *, chat: Chat, message: Message, text: str, seen_version: int | None, role: str, refusal: str
) -> _Edit:
    """Lock the chat, re-read the message and check it can be edited into a version with
    `text` (its other parts kept)."""
    current = message_lock(chat=chat, message=message)
    page_current = shown_as_seen(chat, seen_version)
    if current.role != role:
        raise WrongRole(refusal)
    parts = parts_with_text(current.parts, text)
    parts_text_check(text, parts)
    return _Edit(
        message=current, page_current=page_current, parts=parts, parent=_parent_of(current)
    )


def parts_without_files(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [part for part in parts if part.get("type") != "file"]


def message_edit_user(
    *,
    chat: Chat,
    message: Message,
    text: str,
    model_id: str,
    seen_version: int | None = None,
    files: list[dict[str, Any]] | None = None,
) -> UserEdit:
    """Add an edited version of a user message, selected, with a placeholder for its answer.

    Attachments and other non-text parts are kept; `files` (checked by the caller:
    `chats.message_files.attachments_check`, the kept ones first) replaces the file parts.
    The caller starts the generation into `answer`; its context is
    `ChatTree.ancestors(version.id)`. The whole route to it is selected, unless
    `seen_version` says the page showed the chat as it is (then the message was on the shown
    route, and selecting the new version under its parent is enough).
    """
    with transaction.atomic():
        edit = _edit_locked(
            chat=chat, message=message, text=text, seen_version=seen_version,
            role=Message.Role.USER, refusal="Only your own messages can be edited this way.",
        )  # fmt: skip
        parts = edit.parts if files is None else [*parts_without_files(edit.parts), *files]
        version = message_append(chat=chat, parent=edit.parent, role=Message.Role.USER, parts=parts)
        if file_parts_of(parts):
            message_files_link(message_ids=[version.id])  # the same attachments, never bytes
        answer = message_append(
            chat=chat,
            parent=version,
            role=Message.Role.ASSISTANT,
            parts=[],
            model_id=model_id,
            status=Message.Status.STREAMING,
            parent_has_successor=False,
        )
        if not edit.page_current:
            route_select_locked(chat=chat, message=answer)
        chat_touch(chat=chat, with_root_index=True)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=answer.id)
    return UserEdit(version=version, answer=answer)


def message_edit_assistant(
    *, chat: Chat, message: Message, text: str, seen_version: int | None = None
) -> Message:
    """Add an edited version of an answer, selected and complete (nothing is generated);
    `seen_version` as for `message_edit_user`."""
    with transaction.atomic():
        edit = _edit_locked(
            chat=chat, message=message, text=text, seen_version=seen_version,
            role=Message.Role.ASSISTANT, refusal="Only answers can be edited this way.",
        )  # fmt: skip
        version = message_append(
            chat=chat, parent=edit.parent, role=Message.Role.ASSISTANT, parts=edit.parts,
            model_id=edit.message.model_id,
        )  # fmt: skip
        # Rendered once, like every finished answer.
        version.html = markdown_render(version.text)
        Message.objects.filter(id=version.id).update(html=version.html)
        if not edit.page_current:
            route_select_locked(chat=chat, message=version)
        chat_touch(chat=chat, with_root_index=True)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=version.id)
    return version


def message_edit_in_place(*, message: Message, text: str) -> Message:
    """Replace a message's text without creating a version (the explicit "edit in place")."""
    with transaction.atomic():
        chat = Chat.objects.filter(id=message.chat_id).first()
        if chat is None:
            raise ChatNotFound()
        current = message_lock(chat=chat, message=message)
        if current.status == Message.Status.STREAMING:
            # The generation's next checkpoint would overwrite the edit.
            raise MessageStreaming()
        parts = parts_with_text(current.parts, text)
        parts_text_check(text, parts)
        current.parts = parts
        current.html = (
            markdown_render(current.text) if current.role == Message.Role.ASSISTANT else ""
        )
        current.save(update_fields=["parts", "html", "updated_at"])
        chat_touch(chat=chat)
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
        current = message_lock(chat=chat, message=message)
        page_current = shown_as_seen(chat, seen_version)
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
        if not page_current:
            route_select_locked(chat=chat, message=answer)
        chat_touch(chat=chat, with_root_index=True)
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
        current = message_lock(chat=chat, message=message)
        if sibling and shown_as_seen(chat, seen_version):
            children = [child for child, _ in children_read(chat=chat, parent_id=current.parent_id)]
            selection_store(
                chat=chat,
                parent_id=current.parent_id,
                stored=parent_selection_read(chat=chat, parent_id=current.parent_id),
                index=children.index(current.id),
            )
            publish(
                user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=current.id
            )
            return current.parent_id
        changed_below = route_select_locked(chat=chat, message=current)
        chat_touch(chat=chat, with_root_index=True)
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=current.id)
    return changed_below


def route_select_locked(*, chat: Chat, message: Message) -> uuid.UUID | None:
    """Under the chat's lock: point every selection on the route to `message` (a current row)
    at it.

    Sets `chat.root_message_index`; the caller writes it with `chat_touch`. Returns the
    highest message whose selection changed (None: the chat's own, or nothing changed above
    `message`'s parent: then `message`'s parent).
    """
    stored_root = root_index_read(chat=chat)
    route, fork_points = _route_fork_points(chat=chat, message=message)
    changes, highest = _selection_changes(route=route, fork_points=fork_points)
    changed_below = highest if highest is not None else message.parent_id
    roots = [child for child, _ in children_read(chat=chat, parent_id=None)]
    first = Message.objects.filter(branch_id=route[0][0]).order_by("seq").values_list("id")[0]
    root_index = roots.index(first[0])
    if selected_position(stored_root, len(roots)) != root_index:
        chat.root_message_index = root_index
        changed_below = None
    if changes:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chats_message m SET selected_child_index = v.index, updated_at = now() "
                "FROM unnest(%s::uuid[], %s::int[]) AS v(id, index) WHERE m.id = v.id",
                [list(changes), list(changes.values())],
            )
    return changed_below


# A fork point on a route: (its branch, its seq, its stored selection, the branch the route
# goes on in after it: its own, or the next branch of the route).
type _ForkPoint = tuple[int, int, int | None, int]


def _route_fork_points(
    *, chat: Chat, message: Message
) -> tuple[list[tuple[int, int | None]], dict[uuid.UUID, _ForkPoint]]:
    """The branches of the route to `message` (root first, each with the seq it was forked
    at), and the fork points on that route."""
    with connection.cursor() as cursor:
        cursor.execute(_ROUTE_BRANCHES_SQL, [chat.id, message.branch_id])
        route = cursor.fetchall()
        # Where the route leaves each branch: into the next one, or at `message` itself.
        leave_at = {
            branch_id: (route[i + 1][1] if i + 1 < len(route) else message.seq)
            for i, (branch_id, _fork_seq) in enumerate(route)
        }
        next_branch = {route[i][0]: route[i + 1][0] for i in range(len(route) - 1)}
        cursor.execute(_ROUTE_FORK_POINTS_SQL, [list(leave_at)])
        points: dict[uuid.UUID, _ForkPoint] = {}
        for point_id, branch_id, seq, stored in cursor.fetchall():
            # Forks below `message` (at it or after it) are not on its route.
            leave = leave_at[branch_id]
            if seq < leave or (seq == leave and branch_id != route[-1][0]):
                # The route goes on in the fork point's own branch (its successor, whatever
                # its seq) or into the next branch of the route (that branch's first message).
                goes_on = branch_id if seq < leave else next_branch[branch_id]
                points[point_id] = (branch_id, seq, stored, goes_on)
    return route, points


def _selection_changes(
    *, route: list[tuple[int, int | None]], fork_points: dict[uuid.UUID, _ForkPoint]
) -> tuple[dict[uuid.UUID, int], uuid.UUID | None]:
    """The selections that must change (fork point: index of the child on the route), and the
    highest fork point among them."""
    children: dict[uuid.UUID, list[tuple[datetime, uuid.UUID, int]]] = {}
    for parent_id, child_id, created_at, branch_id in Message.objects.filter(
        parent_id__in=list(fork_points)
    ).values_list("parent_id", "id", "created_at", "branch_id"):
        children.setdefault(parent_id, []).append((created_at, child_id, branch_id))
    depth = {branch_id: level for level, (branch_id, _fork_seq) in enumerate(route)}
    changes: dict[uuid.UUID, int] = {}
    highest: tuple[int, int, uuid.UUID] | None = None
    for parent_id, (branch_id, seq, stored, goes_on) in fork_points.items():
        options = sorted(children.get(parent_id, []))
        index = [row[2] for row in options].index(goes_on)
        if selected_position(stored, len(options)) != index:
            changes[parent_id] = index
            place = (depth[branch_id], seq, parent_id)
            highest = place if highest is None or place < highest else highest
    return changes, highest[2] if highest is not None else None


def branch_select(*, chat: Chat, parent_id: uuid.UUID | None, index: int) -> uuid.UUID:
    """Show the `index`-th child of `parent_id` (None: of the chat's first messages).

    Returns the id of the child now shown.
    """
    with transaction.atomic():
        chat_lock_into(chat=chat)
        stored: int | None
        if parent_id is None:
            stored = root_index_read(chat=chat)
        else:
            found = (
                Message.objects.filter(id=parent_id, chat_id=chat.id)
                .values("selected_child_index")
                .first()
            )
            if found is None:
                raise MessageNotInChat()
            stored = found["selected_child_index"]
        children = children_read(chat=chat, parent_id=parent_id)
        if isinstance(index, bool) or not 0 <= index < len(children):
            raise SelectionOutOfRange(
                f"There is no version {index + 1}: this message has {len(children)}."
            )
        selection_store(chat=chat, parent_id=parent_id, stored=stored, index=index)
        chosen = children[index][0]
        publish(user_id=chat.user_id, kind="tree.changed", chat_id=chat.id, message_id=chosen)
    return chosen
