"""Helpers for the tree tests: writing a message, counting events, checking a tree whole."""

from __future__ import annotations

import itertools
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction

from chats.models import Branch, Chat, Message
from chats.tree import ChatTree, chat_lock, chat_tree_load, message_append

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

            sent.append(orjson.loads(params[1]))
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


def check_tree(chat_id: uuid.UUID) -> ChatTree:
    """Assert every structural invariant of a chat's tree; return the tree read from it.

    The tree is rebuilt twice, from branches (path, fork message, seq) and from parent links,
    and the two must agree; selections must be in range; the active path must run from a first
    message to a leaf, and the model context of its leaf must hold each message once.
    """
    chat = Chat.objects.get(id=chat_id)
    rows = list(
        Message.objects.filter(chat_id=chat_id).values_list(
            "id", "branch_id", "seq", "parent_id", "selected_child_index"
        )
    )
    branches = {
        branch_id: (str(path), parent, fork)
        for branch_id, path, parent, fork in Branch.objects.filter(chat_id=chat_id).values_list(
            "id", "path", "parent_branch_id", "fork_message_id"
        )
    }
    ids = {row[0] for row in rows}

    positions = Counter((branch_id, seq) for _id, branch_id, seq, _p, _s in rows)
    assert max(positions.values(), default=1) == 1, "duplicate (branch, seq)"
    paths = Counter(path for path, _p, _f in branches.values())
    assert max(paths.values(), default=1) == 1, "duplicate branch path"

    by_position = {(branch_id, seq): message_id for message_id, branch_id, seq, _p, _s in rows}
    branch_of = {message_id: branch_id for message_id, branch_id, _seq, _p, _s in rows}
    seqs_by_branch: dict[int, list[int]] = {}
    for _id, branch_id, seq, _p, _s in rows:
        assert branch_id in branches, "message in a branch of another chat (or none)"
        seqs_by_branch.setdefault(branch_id, []).append(seq)
    for branch_id, (path, parent_branch, fork) in branches.items():
        seqs = sorted(seqs_by_branch.get(branch_id, []))
        assert seqs == list(range(len(seqs))) and seqs, f"branch {path} has seqs {seqs}"
        labels = path.split(".")
        assert all(LABEL.match(label) for label in labels), path
        if parent_branch is None:
            assert fork is None and len(labels) == 1, f"root branch {path}"
        else:
            assert fork in ids, f"branch {path} forked at a missing message"
            assert branch_of[fork] == parent_branch, f"branch {path} forked outside its parent"
            assert branches[parent_branch][0] == ".".join(labels[:-1]), f"path {path}"

    for _id, branch_id, seq, parent_id, _s in rows:
        from_branches = by_position[(branch_id, seq - 1)] if seq else branches[branch_id][2]
        assert parent_id == from_branches, "parent link and branch structure disagree"
        assert parent_id is None or parent_id in ids, "missing parent"

    tree = chat_tree_load(chat=chat)
    assert len(tree) == len(rows)
    for message_id, _b, _seq, _p, selected in rows:
        count = len(tree.children.get(message_id, []))
        assert selected is None or 0 <= selected < count, f"selection {selected} of {count}"
    roots = len(tree.children.get(None, []))
    assert chat.root_message_index is None or 0 <= chat.root_message_index < roots
    assert roots == sum(1 for _path, parent, _f in branches.values() if parent is None)

    active = tree.active_path()
    if rows:
        assert active and tree.parent_of[active[0]] is None
        for upper, lower in itertools.pairwise(active):
            assert tree.parent_of[lower] == upper
        assert not tree.children.get(active[-1]), "the active path stops before a leaf"
        context = tree.ancestors(active[-1])
        assert context == active and len(set(context)) == len(context)
    return tree
