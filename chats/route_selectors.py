"""Reading the shown route: a window of its messages (with their texts) and the map.

Both start from `chats.structure` (one query for the chat's branches and fork points): the
window reads texts only for the messages it shows, a few runs of one branch each on the
(branch, seq) index; the map draws one node per run, so its size follows the branches, never
the messages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chats.models import Message
from chats.structure import ChatStructure, Node, Route

# ---------------------------------------------------------------------------------------------
# Reading the shown messages: a window of the route


# The messages of some runs of the route, each run read on the (branch, seq) index between
# its bounds, in route order; `lo`/`hi` narrow the first and last run.
_WINDOW_SQL = """
SELECT m.*, r.ord AS route_run
FROM unnest(%(branches)s::bigint[], %(lo)s::int[], %(hi)s::int[], %(ord)s::int[])
     AS r(branch, lo, hi, ord)
CROSS JOIN LATERAL (
    SELECT * FROM chats_message
    WHERE branch_id = r.branch AND seq BETWEEN r.lo AND r.hi
    ORDER BY seq {direction} LIMIT %(limit)s
) m
ORDER BY r.ord {direction}, m.seq {direction}
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class WindowSlice:
    """Shown messages of the route, in route order, with the run each belongs to."""

    messages: list[Message]
    segment_of: dict[uuid.UUID, int]
    has_before: bool
    has_after: bool


def _runs_read(
    runs: list[tuple[int, int, int, int]], *, limit: int, backwards: bool
) -> list[Message]:
    if not runs:
        return []
    direction = "DESC" if backwards else "ASC"
    sql = _WINDOW_SQL.format(direction=direction)
    params = {
        "branches": [run[0] for run in runs],
        "lo": [run[1] for run in runs],
        "hi": [run[2] for run in runs],
        "ord": [run[3] for run in runs],
        "limit": limit,
    }
    messages = list(Message.objects.raw(sql, params))
    if backwards:
        messages.reverse()
    return messages


def _window_bounds(
    route: Route, *, before: tuple[int, int] | None, start: tuple[int, int] | None
) -> list[tuple[int, int, int]] | None:
    """The runs to read as (run index, lowest seq, highest seq), in reading order: from
    `start` down, from just above `before` up, or from the route's end up (None: the anchor is
    not on the route)."""
    segments = route.segments
    whole = [(i, s.first.seq, s.last.seq) for i, s in enumerate(segments)]
    if start is not None:
        at = route.segment_index(branch_id=start[0], seq=start[1])
        if at is None:
            return None
        return [(at, start[1], segments[at].last.seq), *whole[at + 1 :]]
    if before is not None:
        at = route.segment_index(branch_id=before[0], seq=before[1])
        if at is None:
            return None
        bounds = [*whole[:at], (at, segments[at].first.seq, before[1] - 1)]
    else:
        bounds = whole
    bounds.reverse()
    return bounds


def route_window(
    *,
    route: Route,
    limit: int,
    before: tuple[int, int] | None = None,
    after: tuple[int, int] | None = None,
    start: tuple[int, int] | None = None,
) -> WindowSlice:
    """Read up to `limit` messages of the route, with their texts, in one query (usually).

    By default the latest ones (the end of the route); `before=(branch, seq)`: the ones just
    above that message; `after=(branch, seq)`: the ones just below it; `start=(branch, seq)`:
    that message and the ones below it. The runs
    read are only as many as can hold `limit` messages; gaps in a branch's seq (deleted
    messages) can make a read come up short, and then the next runs are read too.
    """
    segments = route.segments
    if not segments:
        return WindowSlice(messages=[], segment_of={}, has_before=False, has_after=False)
    if after is not None:
        start = (after[0], after[1] + 1)
        at = route.segment_index(branch_id=after[0], seq=after[1])
        if at is not None and after[1] == segments[at].last.seq:  # the run's last: the next run
            if at + 1 == len(segments):
                return WindowSlice(messages=[], segment_of={}, has_before=True, has_after=False)
            start = (segments[at + 1].branch_id, segments[at + 1].first.seq)
    backwards = start is None
    bounds = _window_bounds(route, before=before, start=start)
    if bounds is None:  # the anchor is not on the route: the latest messages
        return route_window(route=route, limit=limit)
    bounds = [b for b in bounds if b[1] <= b[2]]
    messages: list[Message] = []
    taken = 0
    while taken < len(bounds) and len(messages) < limit:
        runs: list[tuple[int, int, int, int]] = []
        room = 0
        # The seq span bounds a run's count from above: enough runs to fill what is missing.
        while taken < len(bounds) and room < limit - len(messages):
            index, lo, hi = bounds[taken]
            runs.append((segments[index].branch_id, lo, hi, index))
            room += hi - lo + 1
            taken += 1
        read = _runs_read(runs, limit=limit - len(messages), backwards=backwards)
        messages = read + messages if backwards else messages + read
    segment_of = {message.id: int(getattr(message, "route_run")) for message in messages}  # noqa: B009
    first, last = route.first, route.leaf
    return WindowSlice(
        messages=messages,
        segment_of=segment_of,
        has_before=bool(messages) and first is not None and str(messages[0].id) != first.id,
        has_after=bool(messages) and last is not None and str(messages[-1].id) != last.id,
    )


# ---------------------------------------------------------------------------------------------
# The map: branch points and the linear runs between them


@dataclass(frozen=True)
class MapRun:
    """A run of messages with no choice inside it, drawn as one node of the map."""

    first: Node
    last: Node  # a fork point, or the end of its branch: what a click shows
    depth: int  # runs above it on its route
    column: int  # leftmost leaf column of its subtree
    version: int  # its first message's place among its siblings (0-based)
    versions: int
    on_route: bool
    length: int  # seq span: the number of messages, or more when some were deleted


def chat_map(*, structure: ChatStructure, route: Route) -> list[MapRun]:
    """Every run of the tree, parents before children, laid out without recursion.

    A run starts at a first message or a child of a fork point and ends at the next fork
    point of its branch (or the branch's end); a linear stretch of any length is one node, so
    the map's size follows the number of branches, never the number of messages. Leaves take
    consecutive columns from left to right; a parent sits above the column of its first leaf.
    """
    shown = {(segment.first.id, segment.last.id) for segment in route.segments}
    order: list[tuple[Node, Node, int, int, int]] = []  # first, last, depth, version, versions
    columns: list[int] = []
    waiting: list[int] = []  # runs placed since the last leaf: their first leaf is the next
    leaves = 0
    roots = structure.roots()
    stack = [(node, 0, index, len(roots)) for index, node in reversed(list(enumerate(roots)))]
    while stack:
        first, depth, version, versions = stack.pop()
        point = structure.next_fork(branch_id=first.branch_id, from_seq=first.seq)
        last = point.node if point is not None else structure.branches[first.branch_id].last
        order.append((first, last, depth, version, versions))
        columns.append(-1)
        waiting.append(len(order) - 1)
        kids = structure.children(point.node.id) if point is not None else ()
        if kids:
            stack.extend(
                (kid, depth + 1, index, len(kids)) for index, kid in reversed(list(enumerate(kids)))
            )
            continue
        for placed in waiting:
            columns[placed] = leaves
        waiting.clear()
        leaves += 1
    return [
        MapRun(
            first=first,
            last=last,
            depth=depth,
            column=columns[at],
            version=version,
            versions=versions,
            on_route=(first.id, last.id) in shown,
            length=last.seq - first.seq + 1,
        )
        for at, (first, last, depth, version, versions) in enumerate(order)
    ]
