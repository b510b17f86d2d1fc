"""Helpers for the tree tests: writing a message, counting events, checking a tree whole."""

from __future__ import annotations

import itertools
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from chats.models import Branch, Chat, Message
from chats.selectors import chat_tree_load
from chats.structure import chat_structure_load
from chats.tree import ChatTree, chat_tree_build
from chats.tree_services import chat_lock, message_append

LABEL = re.compile(rf"^[0-9a-z]{{{Branch.LABEL_WIDTH}}}$")


def say(chat: Chat, parent: Message | None, text: str, role: str = "user") -> Message:
    """Append a message the way the send path does: under the lock, in one transaction."""
    with transaction.atomic():
        chat_lock(chat_id=chat.id)
        message = message_append(
            chat=chat, parent=parent, role=role, parts=[{"type": "text", "text": text}]
        )
        if parent is None:
            Chat.objects.filter(id=chat.id).update(root_message_index=chat.root_message_index)
    return message


def conversation(chat: Chat, *texts: str) -> list[Message]:
    """Append alternating user/assistant messages, each under the previous one."""
    messages: list[Message] = []
    parent: Message | None = None
    for number, text in enumerate(texts):
        parent = say(chat, parent, text, role="user" if number % 2 == 0 else "assistant")
        messages.append(parent)
    return messages


def fresh_tree(chat: Chat) -> ChatTree:
    chat.refresh_from_db()
    return chat_tree_load(chat=chat)


def texts(ids: list[uuid.UUID]) -> list[str]:
    by_id = {message.id: message.text for message in Message.objects.filter(id__in=ids)}
    return [by_id[message_id] for message_id in ids]


def active_texts(chat: Chat) -> list[str]:
    return texts(fresh_tree(chat).active_path())


@contextmanager
def notifications() -> Iterator[list[dict[str, Any]]]:
    """Record every pg_notify this connection sends (the real statement still runs)."""
    sent: list[dict[str, Any]] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if "pg_notify" in sql:
            import orjson

            # publish() names its parameters; the send's folded insert passes them in order.
            payload = params["payload"] if isinstance(params, dict) else params[-1]
            sent.append(orjson.loads(payload))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield sent


def snapshot(chat_id: uuid.UUID) -> tuple[Any, ...]:
    """Everything a tree operation could change in a chat, for "nothing changed" checks."""
    chat = Chat.objects.filter(id=chat_id).values().first()
    messages = sorted(Message.objects.filter(chat_id=chat_id).values_list())
    branches = sorted(
        (branch_id, str(path), parent, fork)
        for branch_id, path, parent, fork in Branch.objects.filter(chat_id=chat_id).values_list(
            "id", "path", "parent_branch_id", "fork_message_id"
        )
    )
    return chat, messages, branches


@dataclass
class CheckedTree:
    tree: ChatTree
    content: dict[uuid.UUID, tuple[str, str, str]]  # role, status, text


def check_tree(chat_id: uuid.UUID) -> ChatTree:
    """Assert every structural invariant of a chat's tree; return the tree read from it."""
    return check_trees([chat_id])[chat_id].tree


def check_trees(chat_ids: list[uuid.UUID]) -> dict[uuid.UUID, CheckedTree]:
    """Assert every structural invariant of these chats' trees, in three queries for all.

    Each tree is rebuilt twice, from branches (path, fork message, seq) and from parent links,
    and the two must agree; selections must be in range; the active path must run from a first
    message to a leaf, and the model context of its leaf must hold each message once.
    """
    root_indexes = dict(
        Chat.objects.filter(id__in=chat_ids).values_list("id", "root_message_index")
    )
    assert set(root_indexes) == set(chat_ids), "a chat in play is gone"
    rows_by_chat: dict[uuid.UUID, list[tuple[Any, ...]]] = {chat_id: [] for chat_id in chat_ids}
    for row in Message.objects.filter(chat_id__in=chat_ids).values_list(
        "chat_id", "id", "branch_id", "seq", "parent_id", "selected_child_index", "created_at",
        "role", "status", "parts",
    ):  # fmt: skip
        rows_by_chat[row[0]].append(row[1:])
    branches_by_chat: dict[uuid.UUID, dict[int, tuple[str, int | None, uuid.UUID | None]]] = {
        chat_id: {} for chat_id in chat_ids
    }
    for chat_id, branch_id, path, parent, fork in Branch.objects.filter(
        chat_id__in=chat_ids
    ).values_list("chat_id", "id", "path", "parent_branch_id", "fork_message_id"):
        branches_by_chat[chat_id][branch_id] = (str(path), parent, fork)
    checked = {
        chat_id: _check_one(
            rows=rows_by_chat[chat_id],
            branches=branches_by_chat[chat_id],
            root_index=root_indexes[chat_id],
        )
        for chat_id in chat_ids
    }
    for chat_id, result in checked.items():
        # The page's route (branches and fork points only) is the reference tree's.
        chat = Chat(id=chat_id, root_message_index=root_indexes[chat_id])
        route = chat_structure_load(chat=chat).route()
        positions = {(row[1], row[2]): row[0] for row in rows_by_chat[chat_id]}
        expanded = [
            positions[(segment.branch_id, seq)]
            for segment in route.segments
            for seq in sorted(
                seq
                for branch_id, seq in positions
                if branch_id == segment.branch_id and segment.first.seq <= seq <= segment.last.seq
            )
        ]
        assert expanded == result.tree.active_path(), "the structure's route is not the tree's"
    return checked


def _check_one(
    *,
    rows: list[tuple[Any, ...]],
    branches: dict[int, tuple[str, int | None, uuid.UUID | None]],
    root_index: int | None,
) -> CheckedTree:
    ids = {row[0] for row in rows}
    positions = Counter((row[1], row[2]) for row in rows)
    assert max(positions.values(), default=1) == 1, "duplicate (branch, seq)"
    paths = Counter(path for path, _p, _f in branches.values())
    assert max(paths.values(), default=1) == 1, "duplicate branch path"

    by_position = {(row[1], row[2]): row[0] for row in rows}
    branch_of = {row[0]: row[1] for row in rows}
    seqs_by_branch: dict[int, list[int]] = {}
    for _id, branch_id, seq, *_rest in rows:
        assert branch_id in branches, "message in a branch of another chat (or none)"
        seqs_by_branch.setdefault(branch_id, []).append(seq)
    for branch_id, (path, parent_branch, fork) in branches.items():
        # Never empty; seq may have gaps (a delete moves nothing).
        assert seqs_by_branch.get(branch_id), f"branch {path} is empty"
        labels = path.split(".")
        assert all(LABEL.match(label) for label in labels), path
        if parent_branch is None:
            assert fork is None and len(labels) == 1, f"root branch {path}"
        else:
            assert fork in ids, f"branch {path} forked at a missing message"
            assert branch_of[fork] == parent_branch, f"branch {path} forked outside its parent"
            assert branches[parent_branch][0] == ".".join(labels[:-1]), f"path {path}"

    previous_in_branch: dict[tuple[int, int], int | None] = {}
    for branch_id, seqs in seqs_by_branch.items():
        ordered = sorted(seqs)
        for before, seq in zip([None, *ordered], ordered, strict=False):
            previous_in_branch[(branch_id, seq)] = before
    for _id, branch_id, seq, parent_id, *_rest in rows:
        before = previous_in_branch[(branch_id, seq)]
        from_branches = (
            by_position[(branch_id, before)] if before is not None else branches[branch_id][2]
        )
        assert parent_id == from_branches, "parent link and branch structure disagree"
        assert parent_id is None or parent_id in ids, "missing parent"

    # The same builder chat_tree_load uses, fed the same columns.
    tree = chat_tree_build(
        [(row[0], row[3], row[5], row[4], row[6], row[7]) for row in rows], root_index=root_index
    )
    for message_id, _b, _seq, _p, selected, *_rest in rows:
        count = len(tree.children.get(message_id, []))
        assert selected is None or 0 <= selected < count, f"selection {selected} of {count}"
    roots = len(tree.children.get(None, []))
    assert root_index is None or 0 <= root_index < roots
    assert roots == sum(1 for _path, parent, _f in branches.values() if parent is None)

    active = tree.active_path()
    if rows:
        assert active and tree.parent_of[active[0]] is None
        for upper, lower in itertools.pairwise(active):
            assert tree.parent_of[lower] == upper
        assert not tree.children.get(active[-1]), "the active path stops before a leaf"
        context = tree.ancestors(active[-1])
        assert context == active and len(set(context)) == len(context)
    content = {
        row[0]: (
            row[6],
            row[7],
            "".join(part.get("text", "") for part in row[8] if part.get("type") == "text"),
        )
        for row in rows
    }
    return CheckedTree(tree=tree, content=content)
