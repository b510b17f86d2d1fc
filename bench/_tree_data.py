"""Datasets for bench_tree.py: branch trees built in set-based SQL, and their adjacency copy.

Why a module of its own: the datasets must be exactly what the figures claim (a tree the app
would have written: branch paths, fork messages, seq, parent links, selections), checked
against a definition that does not come from the app, and restorable after an operation that
changes them (_tree_snapshots.py), so repeated runs measure the same thing.

A dataset is a `Shape`: its branches (each a run of messages forked at a message of its
parent branch), and its expected route as runs of branches. Message ids are derived from
(chat, branch number, seq), so the expected route is known in Python without reading it back.
Children are ordered by (created_at, id) as in the app: an alternative is created after the
version it replaces.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

MODEL_ID = "bench:model"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
LABEL_WIDTH = 4
STEP_MS = 1000  # created_at spacing of consecutive messages of the route


def label(number: int) -> str:
    """A fixed-width base-36 branch label, as the app writes them (Branch.LABEL_WIDTH)."""
    digits = []
    for _ in range(LABEL_WIDTH):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    if number:
        raise ValueError("label out of range")
    return "".join(reversed(digits))


def message_id(chat_id: uuid.UUID, branch: int, seq: int) -> uuid.UUID:
    """The id of message `seq` of branch number `branch`; the SQL below computes the same."""
    return uuid.UUID(hashlib.md5(f"{chat_id}:{branch}:{seq}".encode()).hexdigest())


@dataclass(frozen=True)
class BranchSpec:
    number: int
    path: str
    parent: int | None  # parent branch number
    fork_seq: int | None  # seq, in the parent branch, of the message it is forked at
    count: int  # messages in the branch (seq 0 .. count - 1)
    position: int  # route depth of its seq 0 (0 = a first message): role and text follow it
    created_ms: int  # created_at of its seq 0, in ms after the dataset's epoch


@dataclass
class Shape:
    """A chat's tree: its branches, and its expected route as (branch, first seq, last seq)."""

    name: str
    branches: list[BranchSpec]
    route_runs: list[tuple[int, int, int]]
    # At a message with two children, the route takes the newest (True) or the oldest.
    route_takes_newest: bool = False
    chat_id: uuid.UUID = field(default_factory=uuid.uuid4)
    branch_ids: dict[int, int] = field(default_factory=dict)  # number -> chats_branch.id

    @property
    def message_count(self) -> int:
        return sum(spec.count for spec in self.branches)

    @property
    def route_length(self) -> int:
        return sum(last - first + 1 for _, first, last in self.route_runs)

    def id_of(self, branch: int, seq: int) -> uuid.UUID:
        return message_id(self.chat_id, branch, seq)

    def route_ids(self) -> list[uuid.UUID]:
        return [
            self.id_of(branch, seq)
            for branch, first, last in self.route_runs
            for seq in range(first, last + 1)
        ]

    def route_branches(self) -> list[int]:
        """The chats_branch ids the route runs through, in order."""
        return [self.branch_ids[branch] for branch, _, _ in self.route_runs]

    @property
    def leaf(self) -> uuid.UUID:
        branch, _, last = self.route_runs[-1]
        return self.id_of(branch, last)


def shape_alternatives(name: str, *, length: int, every: int, offset: int) -> Shape:
    """A route of `length` messages in one branch; every `every` messages, from `offset` on,
    the message has a second version: a one-message branch forked at its parent, created
    after it. The route keeps the first versions (dataset 1: 10,000 messages, every 15)."""
    branches = [BranchSpec(0, label(0), None, None, length, 0, 0)]
    for k, seq in enumerate(range(offset, length, every)):
        if seq == 0:
            continue  # a first message's other version would be a second root branch
        branches.append(
            BranchSpec(
                number=k + 1,
                path=f"{label(0)}.{label(k)}",
                parent=0,
                fork_seq=seq - 1,
                count=1,
                position=seq,
                created_ms=seq * STEP_MS + STEP_MS // 2,
            )
        )
    return Shape(name=name, branches=branches, route_runs=[(0, 0, length - 1)])


def shape_linear(name: str, *, length: int) -> Shape:
    return Shape(
        name=name,
        branches=[BranchSpec(0, label(0), None, None, length, 0, 0)],
        route_runs=[(0, 0, length - 1)],
    )


def shape_deep_forks(name: str, *, branches: int, per_branch: int) -> Shape:
    """`branches` branches of `per_branch` messages, each forked at the last-but-one message
    of the one before: its first message is a newer version of that branch's last one, and
    the route takes it, so the route goes through every branch and fork depth grows to
    `branches` levels (dataset 3: 1,000 branches of 100, 100,000 messages)."""
    if branches > STEP_MS:
        raise ValueError("too many branches for the created_at spacing")
    specs = []
    route_runs = []
    for number in range(branches):
        position = number * (per_branch - 1)
        specs.append(
            BranchSpec(
                number=number,
                path=".".join([label(0)] * (number + 1)),
                parent=number - 1 if number else None,
                fork_seq=per_branch - 2 if number else None,
                count=per_branch,
                position=position,
                # After the version it replaces (the parent's last message, at the same depth,
                # created at + number - 1 ms).
                created_ms=position * STEP_MS + number,
            )
        )
        last = per_branch - 1 if number == branches - 1 else per_branch - 2
        route_runs.append((number, 0, last))
    return Shape(name=name, branches=specs, route_runs=route_runs, route_takes_newest=True)


# -- building -----------------------------------------------------------------------------------

_LOREM = (
    "PostgreSQL keeps each branch of the conversation as a run of rows that share a path, so "
    "an alternative answer never moves the messages that already exist. The page reads the "
    "branches first, then only the messages it shows, which keeps its cost tied to the screen "
    "rather than to the length of the chat. Long conversations about code, travel plans, "
    "recipes and contracts all look the same to the storage: ordered rows, a parent link, a "
    "position in a branch, and a selection on each message that has several versions. "
    "Rendering happens once, when an answer is complete, and the stored HTML is what the "
    "browser receives on every later visit, escaped and sanitised by the markdown renderer. "
)

_MESSAGES_SQL = """
WITH spec AS (
    SELECT * FROM unnest(%(numbers)s::int[], %(parents)s::int[], %(fork_seqs)s::int[],
                         %(counts)s::int[], %(positions)s::int[], %(created)s::int[],
                         %(branch_ids)s::bigint[])
             AS s(number, parent, fork_seq, count, position, created_ms, branch_id)
), forks AS (  -- messages that branches fork at, with how many
    SELECT parent AS number, fork_seq AS seq, count(*) AS n FROM spec
    WHERE parent IS NOT NULL GROUP BY parent, fork_seq
), rows AS (
    SELECT s.number, s.parent, s.fork_seq, s.branch_id, g AS seq, s.position + g AS depth,
           s.created_ms + g * %(step)s AS created_ms,
           (g < s.count - 1)::int + coalesce(f.n, 0) AS children,
           -- Texts of a few hundred characters that differ from message to message.
           substr(%(lorem)s, 1 + ((s.position + g) * 53) %% 300,
                  CASE WHEN (s.position + g) %% 2 = 0 THEN 180 ELSE 420 END) AS body
    FROM spec s CROSS JOIN LATERAL generate_series(0, s.count - 1) g
    LEFT JOIN forks f ON f.number = s.number AND f.seq = g
)
INSERT INTO chats_message (
    id, chat_id, branch_id, seq, parent_id, role, parts, model_id, status, error, usage,
    selected_child_index, html, stream_seq, heartbeat_at, generator, created_at, updated_at
)
SELECT md5(%(chat)s::text || ':' || r.number || ':' || r.seq)::uuid, %(chat)s::uuid,
       r.branch_id, r.seq,
       CASE WHEN r.seq > 0 THEN md5(%(chat)s::text || ':' || r.number || ':' || (r.seq - 1))::uuid
            WHEN r.parent IS NOT NULL
            THEN md5(%(chat)s::text || ':' || r.parent || ':' || r.fork_seq)::uuid END,
       CASE WHEN r.depth %% 2 = 0 THEN 'user' ELSE 'assistant' END,
       jsonb_build_array(jsonb_build_object('type', 'text', 'text',
           CASE WHEN r.depth %% 2 = 0 THEN 'Question ' ELSE 'Answer ' END
           || r.depth || ' (v' || r.number || '): ' || r.body)),
       CASE WHEN r.depth %% 2 = 0 THEN '' ELSE %(model)s END,
       'complete', '', NULL,
       -- Every message with children shows one: the only one, or at a fork the oldest (the
       -- in-branch successor) or the newest (the last branch forked there).
       CASE WHEN r.children = 0 THEN NULL
            WHEN r.children > 1 AND %(newest)s THEN r.children - 1 ELSE 0 END,
       CASE WHEN r.depth %% 2 = 0 THEN ''
            ELSE '<p>Answer ' || r.depth || ' (v' || r.number || '): '
                 || substr(r.body, 1, 200) || '</p>' || chr(10) || '<ul>' || chr(10)
                 || '<li>' || substr(r.body, 201, 110) || '</li>' || chr(10)
                 || '<li><code>' || substr(r.body, 311, 60) || '</code></li>' || chr(10)
                 || '</ul>' || chr(10) || '<p>' || substr(r.body, 371) || '</p>' END,
       0, NULL, NULL,
       %(epoch)s::timestamptz + r.created_ms * interval '1 millisecond',
       %(epoch)s::timestamptz + r.created_ms * interval '1 millisecond'
FROM rows r
"""


def shape_build(conn: psycopg.Connection[Any], shape: Shape, *, user_id: uuid.UUID) -> None:
    """Insert the shape's branches and messages (the chat row exists already: the ORM made it,
    so columns the app adds later get their defaults)."""
    specs = shape.branches
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT nextval(pg_get_serial_sequence('chats_branch', 'id')) "
            "FROM generate_series(1, %s)",
            [len(specs)],
        ).fetchall()
    ]
    shape.branch_ids = {spec.number: branch_id for spec, branch_id in zip(specs, ids, strict=True)}
    epoch = "2026-01-01T00:00:00+00:00"
    conn.execute(
        """
        INSERT INTO chats_branch (id, chat_id, parent_branch_id, fork_message_id, path,
                                  created_at)
        SELECT s.id, %(chat)s::uuid, s.parent_id,
               CASE WHEN s.parent IS NOT NULL
                    THEN md5(%(chat)s::text || ':' || s.parent || ':' || s.fork_seq)::uuid END,
               s.path::ltree, %(epoch)s::timestamptz + s.created_ms * interval '1 millisecond'
        FROM unnest(%(ids)s::bigint[], %(parent_ids)s::bigint[], %(parents)s::int[],
                    %(fork_seqs)s::int[], %(paths)s::text[], %(created)s::int[])
             AS s(id, parent_id, parent, fork_seq, path, created_ms)
        """,
        {
            "chat": str(shape.chat_id),
            "epoch": epoch,
            "ids": ids,
            "parent_ids": [
                shape.branch_ids[s.parent] if s.parent is not None else None for s in specs
            ],
            "parents": [s.parent for s in specs],
            "fork_seqs": [s.fork_seq for s in specs],
            "paths": [s.path for s in specs],
            "created": [s.created_ms for s in specs],
        },
    )
    conn.execute(
        _MESSAGES_SQL,
        {
            "chat": str(shape.chat_id),
            "numbers": [s.number for s in specs],
            "parents": [s.parent for s in specs],
            "fork_seqs": [s.fork_seq for s in specs],
            "counts": [s.count for s in specs],
            "positions": [s.position for s in specs],
            "created": [s.created_ms for s in specs],
            "branch_ids": ids,
            "step": STEP_MS,
            "lorem": _LOREM * 2,
            "model": MODEL_ID,
            "epoch": epoch,
            "newest": shape.route_takes_newest,
        },
    )
    conn.execute("UPDATE chats_chat SET root_message_index = 0 WHERE id = %s", [str(shape.chat_id)])


# -- checks -------------------------------------------------------------------------------------

# Each a count of rows breaking one rule of the app's tree (research/tree-storage.md): all 0.
_CONSISTENCY_SQL = """
SELECT
 (SELECT count(*) FROM chats_message m
  LEFT JOIN chats_message p ON p.branch_id = m.branch_id AND p.seq = m.seq - 1
  WHERE m.chat_id = %(chat)s AND m.seq > 0 AND m.parent_id IS DISTINCT FROM p.id)
  AS "in-branch parent is not the previous seq",
 (SELECT count(*) FROM chats_message m JOIN chats_branch b ON b.id = m.branch_id
  WHERE m.chat_id = %(chat)s AND m.seq = 0 AND m.parent_id IS DISTINCT FROM b.fork_message_id)
  AS "first message's parent is not its branch's fork message",
 (SELECT count(*) FROM chats_branch b JOIN chats_message f ON f.id = b.fork_message_id
  WHERE b.chat_id = %(chat)s AND f.branch_id IS DISTINCT FROM b.parent_branch_id)
  AS "fork message not in the parent branch",
 (SELECT count(*) FROM chats_branch b LEFT JOIN chats_branch p ON p.id = b.parent_branch_id
  WHERE b.chat_id = %(chat)s AND (
    nlevel(b.path) <> coalesce(nlevel(p.path), 0) + 1
    OR (p.id IS NOT NULL AND NOT subpath(b.path, 0, nlevel(b.path) - 1) = p.path)
    OR length(ltree2text(subpath(b.path, nlevel(b.path) - 1))) <> 4))
  AS "path is not the parent's path plus one 4-character label",
 (SELECT count(*) FROM (SELECT branch_id, count(*) n, max(seq) top FROM chats_message
                        WHERE chat_id = %(chat)s GROUP BY branch_id) s WHERE s.top <> s.n - 1)
  AS "seq not 0..n-1 in a branch",
 (SELECT count(*) FROM chats_message p
  LEFT JOIN (SELECT parent_id, count(*) n FROM chats_message WHERE chat_id = %(chat)s
             GROUP BY parent_id) k ON k.parent_id = p.id
  WHERE p.chat_id = %(chat)s AND (
    (k.n IS NULL AND p.selected_child_index IS NOT NULL)
    OR (k.n IS NOT NULL AND NOT p.selected_child_index BETWEEN 0 AND k.n - 1)))
  AS "selection missing or out of range",
 (SELECT count(*) FROM chats_message m WHERE m.chat_id = %(chat)s AND (
    m.status <> 'complete' OR length(m.parts -> 0 ->> 'text') < 150
    OR (m.role = 'assistant' AND length(m.html) < 300)))
  AS "text or html missing"
"""


def shape_consistency(conn: psycopg.Connection[Any], shape: Shape) -> list[str]:
    """The rules the stored tree breaks (none for a good dataset), with the counts."""
    cursor = conn.execute(_CONSISTENCY_SQL, {"chat": str(shape.chat_id)})
    row = cursor.fetchone()
    assert row is not None and cursor.description is not None
    problems = [f"{col.name}: {n}" for col, n in zip(cursor.description, row, strict=True) if n]
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM chats_message WHERE chat_id = %(chat)s), "
        "(SELECT count(*) FROM chats_branch WHERE chat_id = %(chat)s)",
        {"chat": str(shape.chat_id)},
    ).fetchone()
    assert counts is not None
    if counts != (shape.message_count, len(shape.branches)):
        problems.append(f"counts {counts} != {(shape.message_count, len(shape.branches))}")
    return problems


# -- the adjacency baseline ---------------------------------------------------------------------

ADJACENCY_DDL = """
CREATE TABLE bench_adjacency (
    id uuid PRIMARY KEY,
    chat_id uuid NOT NULL,
    parent_id uuid,
    role varchar(16) NOT NULL,
    parts jsonb NOT NULL,
    html text NOT NULL,
    selected_child_index integer,
    created_at timestamptz NOT NULL
);
CREATE INDEX bench_adjacency_parent ON bench_adjacency (parent_id);
CREATE INDEX bench_adjacency_chat ON bench_adjacency (chat_id);
"""


def adjacency_build(conn: psycopg.Connection[Any]) -> None:
    """The same messages in a bare parent-link table (the design the research compared)."""
    for statement in ADJACENCY_DDL.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT INTO bench_adjacency SELECT id, chat_id, parent_id, role, parts, html, "
        "selected_child_index, created_at FROM chats_message"
    )


# The route following the selections, one recursion step per message: at each message its
# children in creation order (the parent_id index, then a sort of the few siblings), the
# selected one, or the newest when unset. An out-of-range selection (the app shows the newest;
# the datasets have none, shape_consistency checks it) would end the route there.
ADJACENCY_ROUTE_SQL = """
WITH RECURSIVE route(id, selected, depth) AS (
    (SELECT id, selected_child_index, 0 FROM bench_adjacency
     WHERE chat_id = %(chat)s AND parent_id IS NULL
     ORDER BY created_at, id OFFSET %(root)s LIMIT 1)
    UNION ALL
    SELECT c.id, c.selected_child_index, r.depth + 1
    FROM route r
    CROSS JOIN LATERAL (
        SELECT a.id, a.selected_child_index FROM bench_adjacency a WHERE a.parent_id = r.id
        ORDER BY a.created_at, a.id
        OFFSET CASE WHEN r.selected >= 0 THEN r.selected
                    ELSE (SELECT greatest(count(*) - 1, 0) FROM bench_adjacency n
                          WHERE n.parent_id = r.id) END
        LIMIT 1
    ) c
)
SELECT id FROM route ORDER BY depth
"""
