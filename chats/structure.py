"""A chat's structure at the level of branches: what a page needs to find its route, cheaply.

A message that no branch forks at has at most one child, its successor in its branch, so the
only places where the route can turn are the fork points (messages some branch forks at) and
the chat's first messages. One query reads the chat's branches (with the first and last
message of each) and its fork points (with their selection and in-branch successor); from
those the active route is computed in Python, without recursion, as a few runs of branches
(`Segment`s). Its cost follows the number of branches, never the number of messages: a
100,000-message chat with one branch is one row. Texts are read only for the messages shown
(`chats.route_selectors.route_window`).

Positions inside a branch are `seq` ranges: a branch's `seq` may have gaps (a delete moves
nothing), so counts are never derived from seq arithmetic alone.
"""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import NamedTuple

from django.db import connection

from chats.models import Chat, Message
from chats.tree import selected_position

# Every branch with its first and last message, and every fork point with its in-branch
# successor. Each lateral read is one probe of the (branch, seq) index.
_STRUCTURE_SQL = """
WITH forked AS (
    -- With `below`: the paths of the branches forked from its branch at it or after it.
    SELECT coalesce(array_agg(f.path), '{}') AS paths
    FROM chats_branch f JOIN chats_message fm ON fm.id = f.fork_message_id
    WHERE f.parent_branch_id = %(below_branch)s AND fm.seq >= %(below_seq)s
), branches AS (
    SELECT b.id, b.parent_branch_id, b.fork_message_id FROM chats_branch b, forked
    WHERE b.chat_id = %(chat)s AND (
        %(below_branch)s::bigint IS NULL OR b.id = %(below_branch)s OR b.path <@ forked.paths)
)
SELECT true, b.id, b.parent_branch_id, b.fork_message_id::text,
       f.id::text, f.seq, f.stamp, f.role,
       l.id::text, l.seq, l.stamp, l.role, l.status, NULL::integer
FROM branches b
CROSS JOIN LATERAL (
    SELECT id, seq, (extract(epoch FROM created_at) * 1000000)::bigint AS stamp, role
    FROM chats_message WHERE branch_id = b.id ORDER BY seq LIMIT 1
) f
CROSS JOIN LATERAL (
    SELECT id, seq, (extract(epoch FROM created_at) * 1000000)::bigint AS stamp, role, status
    FROM chats_message WHERE branch_id = b.id ORDER BY seq DESC LIMIT 1
) l
UNION ALL
SELECT false, p.branch_id, NULL, NULL,
       p.id::text, p.seq, (extract(epoch FROM p.created_at) * 1000000)::bigint, p.role,
       s.id::text, s.seq, s.stamp, s.role, s.status, p.selected_child_index
FROM chats_message p
LEFT JOIN LATERAL (
    SELECT id, seq, (extract(epoch FROM created_at) * 1000000)::bigint AS stamp, role, status
    FROM chats_message WHERE branch_id = p.branch_id AND seq > p.seq ORDER BY seq LIMIT 1
) s ON true
WHERE p.id IN (SELECT fork_message_id FROM branches WHERE fork_message_id IS NOT NULL)
  AND p.branch_id IN (SELECT id FROM branches)
"""


class Node(NamedTuple):
    """A message as the structure knows it: where it is, never what it says.

    Tuples, not dataclasses, and ids as text, not UUIDs: a chat with a thousand branches
    makes a few thousand of them per page; a named tuple is built several times faster than
    a frozen dataclass, and hashing UUIDs (a Python method) took a third of the load.
    """

    id: str  # the message's UUID as text
    branch_id: int
    seq: int
    created: int  # created_at in microseconds since the epoch: siblings are in this order
    role: str
    status: str = ""

    @property
    def order(self) -> tuple[int, str]:
        """Siblings are ordered by creation; the selections are positions in that order."""
        return (self.created, self.id)


def node_of(message: Message) -> Node:
    """A loaded message as the structure knows it."""
    stamp = message.created_at
    micros = (stamp - _EPOCH) // timedelta(microseconds=1)
    return Node(
        str(message.id), message.branch_id, message.seq, micros, message.role, message.status
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Siblings' order, by position in the tuple (C speed): (created, id).
_ORDER = itemgetter(3, 0)


class BranchInfo(NamedTuple):
    id: int
    parent_branch_id: int | None
    fork_message_id: str | None
    first: Node
    last: Node


class ForkPoint(NamedTuple):
    node: Node
    selected: int | None
    successor: Node | None


@dataclass(frozen=True)
class Segment:
    """A run of the route inside one branch: its messages with `first_seq <= seq <= last_seq`.

    The route enters at `first` and leaves at `last` (a fork point, or the branch's end).
    """

    branch_id: int
    first: Node
    last: Node

    def holds(self, *, branch_id: int, seq: int) -> bool:
        return branch_id == self.branch_id and self.first.seq <= seq <= self.last.seq


@dataclass(frozen=True)
class Choice:
    """Where the route turns: the options in creation order and the one taken."""

    parent_id: str | None
    options: tuple[Node, ...]
    index: int


@dataclass(frozen=True)
class Route:
    """The active route: its runs in order, and the choice made at the start of each run."""

    segments: tuple[Segment, ...]
    # choices[i] is how segments[i] was entered (None: from its predecessor in the branch,
    # which has no other child).
    choices: tuple[Choice | None, ...]

    @property
    def leaf(self) -> Node | None:
        return self.segments[-1].last if self.segments else None

    @property
    def first(self) -> Node | None:
        return self.segments[0].first if self.segments else None

    def segment_index(self, *, branch_id: int, seq: int) -> int | None:
        """The run holding the message at (branch, seq), or None when it is off the route."""
        for index, segment in enumerate(self.segments):
            if segment.holds(branch_id=branch_id, seq=seq):
                return index
        return None


@dataclass
class ChatStructure:
    chat_id: uuid.UUID
    root_index: int | None
    branches: dict[int, BranchInfo]
    fork_points: dict[str, ForkPoint]
    forks_at: dict[str, list[int]]  # fork point id → branch ids forked there
    _fork_seqs: dict[int, list[int]] = field(default_factory=dict, repr=False)
    _fork_by_seq: dict[tuple[int, int], ForkPoint] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for point in self.fork_points.values():
            self._fork_seqs.setdefault(point.node.branch_id, []).append(point.node.seq)
            self._fork_by_seq[(point.node.branch_id, point.node.seq)] = point
        for seqs in self._fork_seqs.values():
            seqs.sort()

    # -- children -------------------------------------------------------------------------

    def roots(self) -> tuple[Node, ...]:
        """The chat's first messages, in creation order."""
        firsts = [b.first for b in self.branches.values() if b.parent_branch_id is None]
        return tuple(sorted(firsts, key=_ORDER))

    def children(self, fork_point_id: str) -> tuple[Node, ...]:
        """A fork point's children: its in-branch successor and each forked branch's first."""
        point = self.fork_points[fork_point_id]
        kids = [self.branches[branch_id].first for branch_id in self.forks_at[fork_point_id]]
        if point.successor is not None:
            kids.append(point.successor)
        return tuple(sorted(kids, key=_ORDER))

    def is_branched(self) -> bool:
        return bool(self.fork_points) or len(self.roots()) > 1

    def __len__(self) -> int:
        return len(self.branches)

    # -- the route ------------------------------------------------------------------------

    def next_fork(self, *, branch_id: int, from_seq: int) -> ForkPoint | None:
        """The first fork point of the branch at or after `from_seq`: where a run ends."""
        seqs = self._fork_seqs.get(branch_id)
        if not seqs:
            return None
        at = bisect.bisect_left(seqs, from_seq)
        return self._fork_by_seq[(branch_id, seqs[at])] if at < len(seqs) else None

    def route(self, *, start: Node | None = None) -> Route:
        """The shown route, following the selections (the newest sibling when one is unset).

        `start`: the route from that message down (a structure loaded `below` it).
        """
        segments: list[Segment] = []
        choices: list[Choice | None] = []
        options = (start,) if start is not None else self.roots()
        index = self.root_index if start is None else 0
        parent_id: str | None = None
        while options:
            chosen_index = selected_position(index, len(options)) or 0
            entry = options[chosen_index]
            choice = Choice(parent_id=parent_id, options=options, index=chosen_index)
            # A message is its fork point's only child when the fork's branches are gone.
            shown = len(options) > 1 or (parent_id is None and start is None)
            choices.append(choice if shown else None)
            point = self.next_fork(branch_id=entry.branch_id, from_seq=entry.seq)
            if point is None:
                segments.append(
                    Segment(entry.branch_id, entry, self.branches[entry.branch_id].last)
                )
                break
            segments.append(Segment(entry.branch_id, entry, point.node))
            parent_id = point.node.id
            options = self.children(point.node.id)
            index = point.selected
        return Route(segments=tuple(segments), choices=tuple(choices))


def chat_structure_load(*, chat: Chat, below: Message | None = None) -> ChatStructure:
    """Read the chat's branches and fork points in one query (no texts, no recursion).

    `below`: only what lies under that message (its branch, and the branches forked at it or
    after it with theirs), for `ChatStructure.route(start=below)`: the cost of what a change
    near the end of a long chat shows follows what is below it.
    """
    params = {
        "chat": chat.id,
        "below_branch": below.branch_id if below is not None else None,
        "below_seq": below.seq if below is not None else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(_STRUCTURE_SQL, params)
        rows = cursor.fetchall()
    branches: dict[int, BranchInfo] = {}
    fork_points: dict[str, ForkPoint] = {}
    forks_at: dict[str, list[int]] = {}
    for row in rows:
        (is_branch, branch_id, parent_branch_id, fork_message_id) = row[:4]
        if is_branch:
            first = Node(row[4], branch_id, row[5], row[6], row[7])
            last = Node(row[8], branch_id, row[9], row[10], row[11], row[12])
            branches[branch_id] = BranchInfo(
                branch_id, parent_branch_id, fork_message_id, first, last
            )
            if fork_message_id is not None:
                forks_at.setdefault(fork_message_id, []).append(branch_id)
        else:
            node = Node(row[4], branch_id, row[5], row[6], row[7])
            successor = (
                Node(row[8], branch_id, row[9], row[10], row[11], row[12])
                if row[8] is not None
                else None
            )
            fork_points[node.id] = ForkPoint(node, row[13], successor)
    # A branch forked at a message that no longer exists cannot be reached; the invariants
    # exclude it, and the route simply never enters it.
    forks_at = {point: ids for point, ids in forks_at.items() if point in fork_points}
    return ChatStructure(
        chat_id=chat.id,
        root_index=chat.root_message_index,
        branches=branches,
        fork_points=fork_points,
        forks_at=forks_at,
    )


# The branches of the route from a first message down to a message (ltree over branches),
# each with the seq where the route leaves it: the message's own seq minus `%(before)s` in its
# branch (0: the message is on the route, 1: the route stops above it), else the seq of the
# message the next branch forks at. Proportional to the route's branches, not the chat. The
# model's context (chats/context_selectors.py) reads the same route backwards, up to a limit.
ROUTE_BRANCHES_CTE = """
WITH target AS (
    SELECT m.branch_id, m.seq, b.path
    FROM chats_message m JOIN chats_branch b ON b.id = m.branch_id
    WHERE m.id = %(message)s AND m.chat_id = %(chat)s
), route AS (
    SELECT b.id, nlevel(b.path) AS depth,
           CASE WHEN b.id = t.branch_id THEN t.seq - %(before)s
                ELSE (SELECT fork.seq
                      FROM chats_branch child
                      JOIN chats_message fork ON fork.id = child.fork_message_id
                      WHERE child.parent_branch_id = b.id AND child.path @> t.path)
           END AS last_seq
    FROM chats_branch b, target t
    WHERE b.chat_id = %(chat)s AND b.path @> t.path
)
"""

_MESSAGE_ROUTE_SQL = (
    ROUTE_BRANCHES_CTE
    + """
SELECT m.id FROM route r JOIN chats_message m ON m.branch_id = r.id AND m.seq <= r.last_seq
ORDER BY r.depth, m.seq
"""
)


def message_route(*, chat_id: uuid.UUID, message_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids from a first message down to `message_id` (empty when it is not in the chat)."""
    with connection.cursor() as cursor:
        cursor.execute(_MESSAGE_ROUTE_SQL, {"message": message_id, "chat": chat_id, "before": 0})
        return [row[0] for row in cursor.fetchall()]
