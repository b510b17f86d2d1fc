"""A chat's tree checked from its raw tables, independently of the app's own tree code.

The concurrency suites (tests/chats/test_tree_http_concurrency.py) race real HTTP clients on
one chat and then need a judge that shares none of the code under test: the checks here are
plain SQL over chats_chat, chats_branch and chats_message (as chats/models.py defines them),
and the shown route is computed in Python from rows read with plain SQL. Nothing here imports
chats.tree or the tree services.

`no_lock` stands in for `chats.tree_services.chat_lock` in a live server started with
`live_server_start(patches=...)`, to show that the suite notices a tree written without the
chat's row lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from chats.tree_services import LockedChat

# Each query names the chat as %(chat)s and returns one row per violation: a label and details.
# seq may have gaps (a delete leaves them, and a fixed server may tolerate them): nothing here
# assumes a branch's seq is contiguous, only that it orders the branch.
_VIOLATION_QUERIES: dict[str, str] = {
    "parent in another chat": """
        SELECT m.id::text, p.chat_id::text FROM chats_message m
        JOIN chats_message p ON p.id = m.parent_id
        WHERE m.chat_id = %(chat)s AND p.chat_id <> m.chat_id
    """,
    "parent missing": """
        SELECT m.id::text, m.parent_id::text FROM chats_message m
        WHERE m.chat_id = %(chat)s AND m.parent_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM chats_message p WHERE p.id = m.parent_id)
    """,
    "message's branch in another chat or missing": """
        SELECT m.id::text, m.branch_id::text FROM chats_message m
        LEFT JOIN chats_branch b ON b.id = m.branch_id
        WHERE m.chat_id = %(chat)s AND (b.id IS NULL OR b.chat_id <> m.chat_id)
    """,
    "(branch, seq) not unique": """
        SELECT m.branch_id::text || '/' || m.seq::text, string_agg(m.id::text, ',')
        FROM chats_message m WHERE m.chat_id = %(chat)s
        GROUP BY m.branch_id, m.seq HAVING count(*) > 1
    """,
    "branch path is not its parent branch's path plus one label": """
        SELECT b.id::text, b.path::text || ' under ' || coalesce(pb.path::text, '(none)')
        FROM chats_branch b
        LEFT JOIN chats_branch pb ON pb.id = b.parent_branch_id
        WHERE b.chat_id = %(chat)s AND (
            (b.parent_branch_id IS NULL AND nlevel(b.path) <> 1)
            OR (b.parent_branch_id IS NOT NULL AND (
                pb.id IS NULL OR pb.chat_id <> b.chat_id
                OR nlevel(b.path) <> nlevel(pb.path) + 1
                OR subpath(b.path, 0, nlevel(pb.path)) <> pb.path)))
    """,
    "branch path not unique in its chat": """
        SELECT b.path::text, string_agg(b.id::text, ',') FROM chats_branch b
        WHERE b.chat_id = %(chat)s GROUP BY b.path HAVING count(*) > 1
    """,
    "fork message not in the parent branch": """
        SELECT b.id::text, coalesce(b.fork_message_id::text, '(none)') || ' in branch '
               || coalesce(fm.branch_id::text, '(none)') || ', parent branch '
               || coalesce(b.parent_branch_id::text, '(none)')
        FROM chats_branch b LEFT JOIN chats_message fm ON fm.id = b.fork_message_id
        WHERE b.chat_id = %(chat)s AND (
            (b.parent_branch_id IS NULL AND b.fork_message_id IS NOT NULL)
            OR (b.parent_branch_id IS NOT NULL AND (
                fm.id IS NULL OR fm.branch_id <> b.parent_branch_id
                OR fm.chat_id <> b.chat_id)))
    """,
    "in-branch parent is not the previous message (or the fork message)": """
        SELECT o.id::text, 'branch ' || o.branch_id || ' seq ' || o.seq || ': parent '
               || coalesce(o.parent_id::text, 'NULL') || ', expected '
               || coalesce(o.expected::text, 'NULL')
        FROM (
            SELECT m.id, m.branch_id, m.seq, m.parent_id,
                   CASE WHEN lag(m.id) OVER w IS NULL THEN b.fork_message_id
                        ELSE lag(m.id) OVER w END AS expected
            FROM chats_message m JOIN chats_branch b ON b.id = m.branch_id
            WHERE m.chat_id = %(chat)s
            WINDOW w AS (PARTITION BY m.branch_id ORDER BY m.seq)
        ) o
        WHERE o.parent_id IS DISTINCT FROM o.expected
    """,
    "streaming message has children": """
        SELECT m.id::text, count(c.id)::text FROM chats_message m
        JOIN chats_message c ON c.parent_id = m.id
        WHERE m.chat_id = %(chat)s AND m.status = 'streaming'
        GROUP BY m.id
    """,
    "message not reachable from a first message (a cycle)": """
        WITH RECURSIVE reached(id) AS (
            SELECT id FROM chats_message WHERE chat_id = %(chat)s AND parent_id IS NULL
            UNION
            SELECT c.id FROM chats_message c JOIN reached r ON c.parent_id = r.id
        )
        SELECT m.id::text, coalesce(m.parent_id::text, 'NULL') FROM chats_message m
        WHERE m.chat_id = %(chat)s AND m.id NOT IN (SELECT id FROM reached)
    """,
}


@dataclass(frozen=True)
class MessageRow:
    id: uuid.UUID
    parent_id: uuid.UUID | None
    created_at: datetime
    selected_child_index: int | None
    status: str


@dataclass(frozen=True)
class ChatRows:
    """A chat's structure as stored: its messages and its root selection."""

    root_message_index: int | None
    messages: dict[uuid.UUID, MessageRow]

    def children(self) -> dict[uuid.UUID | None, list[uuid.UUID]]:
        """Each message's children (None: the first messages), ordered by (created_at, id)."""
        ordered = sorted(self.messages.values(), key=lambda row: (row.created_at, row.id))
        children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
        for row in ordered:
            children.setdefault(row.parent_id, []).append(row.id)
        return children


def chat_rows_load(*, chat_id: uuid.UUID) -> ChatRows | None:
    """Read a chat's messages with plain SQL; None when the chat does not exist."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT root_message_index FROM chats_chat WHERE id = %s", [chat_id])
        chat = cursor.fetchone()
        if chat is None:
            return None
        cursor.execute(
            "SELECT id, parent_id, created_at, selected_child_index, status "
            "FROM chats_message WHERE chat_id = %s",
            [chat_id],
        )
        messages = {row[0]: MessageRow(*row) for row in cursor.fetchall()}
    return ChatRows(root_message_index=chat[0], messages=messages)


def _pick(options: list[uuid.UUID], index: int | None) -> uuid.UUID:
    # A missing or out-of-range selection shows the newest child.
    if index is None or not 0 <= index < len(options):
        return options[-1]
    return options[index]


def route_from_rows(rows: ChatRows) -> list[uuid.UUID]:
    """The shown route: from the selected first message, each message's selected child, to a
    leaf. Raises AssertionError if the selections lead round a cycle."""
    children = rows.children()
    route: list[uuid.UUID] = []
    options = children.get(None, [])
    index = rows.root_message_index
    while options:
        chosen = _pick(options, index)
        assert chosen not in route, f"the route comes back to {chosen}"
        route.append(chosen)
        options = children.get(chosen, [])
        index = rows.messages[chosen].selected_child_index
    return route


def route_from_tables(*, chat_id: uuid.UUID) -> list[uuid.UUID]:
    """The route a chat's page must show, computed from its raw tables."""
    rows = chat_rows_load(chat_id=chat_id)
    assert rows is not None, f"chat {chat_id} is gone"
    return route_from_rows(rows)


def tree_violations(*, chat_id: uuid.UUID) -> list[str]:
    """Every broken invariant of a chat's stored tree, one line each (empty: the tree is whole).

    Checked: parents and branches in the same chat, (branch, seq) unique, branch paths (a root
    branch has one label, a child branch its parent's path plus one) unique in the chat, fork
    messages in the parent branch, each branch a chain (ordered by seq, each message's parent is
    the previous one, the first's is the branch's fork message), every message reachable from a
    first message, no child under a `streaming` message, and a route that ends at a leaf.
    """
    found: list[str] = []
    with connection.cursor() as cursor:
        for label, sql in _VIOLATION_QUERIES.items():
            cursor.execute(sql, {"chat": chat_id})
            found.extend(f"{label}: {key} ({detail})" for key, detail in cursor.fetchall())
    rows = chat_rows_load(chat_id=chat_id)
    if rows is None:
        return [*found, f"chat {chat_id} is gone"]
    if rows.messages:
        try:
            route = route_from_rows(rows)
        except AssertionError as error:
            return [*found, f"route: {error}"]
        if not route:
            found.append("route: the chat has messages but no first message")
        elif any(row.parent_id == route[-1] for row in rows.messages.values()):
            found.append(f"route: ends at {route[-1]}, which has children")
    return found


def branch_seq_gaps(*, chat_id: uuid.UUID) -> list[str]:
    """Where a branch's seq skips numbers: not a violation (see above), but worth reporting."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT branch_id, seq, next_seq FROM (
                SELECT branch_id, seq, lead(seq) OVER (PARTITION BY branch_id ORDER BY seq)
                       AS next_seq
                FROM chats_message WHERE chat_id = %s
            ) s WHERE next_seq > seq + 1
            """,
            [chat_id],
        )
        return [f"branch {b} jumps from seq {s} to {n}" for b, s, n in cursor.fetchall()]


def no_lock(*, chat_id: uuid.UUID) -> LockedChat | None:
    """`chat_lock` without the lock: the chat's row as it reads (for patched servers)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tree_version, root_message_index FROM chats_chat WHERE id = %s", [chat_id]
        )
        row = cursor.fetchone()
    return LockedChat(*row) if row is not None else None
