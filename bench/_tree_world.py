"""bench_tree.py's world: the datasets built and checked, the checks of a page and a route,
and the tree figures' output.

Why a module of its own: the in-process and the HTTP phases (_tree_inprocess.py,
_tree_http.py) measure the same chats and check what they read against the same definitions.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _harness
import _tree_data as data
import psycopg
from _harness import comment
from _tree_adapters import route_comparable
from _tree_snapshots import Snapshot, snapshot_restore, snapshot_take


def report(
    name: str, value: float, unit: str, target: str | None = None, met: bool | None = None
) -> None:
    """A tree figure: small values shown finer (ms under 10, ratios under 0.1)."""
    if unit in _harness.WHOLE_UNITS:
        digits = 0
    elif unit == "ratio" and value < 0.1:
        digits = 4
    elif unit == "ratio" or (unit == "ms" and value < 10):
        digits = 2
    else:
        digits = 1
    _harness.report(name, value, unit, target, met, digits=digits)


@dataclass
class World:
    conn: psycopg.Connection[Any]  # autocommit, for building, snapshots and restores
    user_id: uuid.UUID
    shapes: dict[str, data.Shape]
    snapshots: dict[str, Snapshot] = field(default_factory=dict)

    def restore(self, name: str) -> None:
        snapshot_restore(self.conn, self.snapshots[name])


SHAPES: dict[str, Callable[[], data.Shape]] = {
    "d1": lambda: data.shape_alternatives("d1", length=10_000, every=15, offset=9),
    "d2": lambda: data.shape_linear("d2", length=100_000),
    "d3": lambda: data.shape_deep_forks("d3", branches=1_000, per_branch=100),
    "d4": lambda: data.shape_linear("d4", length=10),
    "d4alt": lambda: data.shape_alternatives("d4alt", length=10, every=15, offset=9),
}


# The chats that operations change (and the bench puts back after each).
RESTORED = ("d1", "d3", "d4", "d4alt")


def world_build(conninfo: str) -> World:
    """The user, the chats (ORM: the app's defaults) and their trees (SQL), checked."""
    from django.db import connection

    from accounts.models import User
    from chats.models import Chat

    user = User.objects.create_user(email="tree-bench@example.com")
    shapes = {name: make() for name, make in SHAPES.items()}
    for shape in shapes.values():
        Chat.objects.create(
            id=shape.chat_id, user=user, title=f"Bench {shape.name}",
            settings={"model": data.MODEL_ID},
        )  # fmt: skip
    connection.close()
    conn = psycopg.connect(conninfo, autocommit=True)
    steps: list[str] = []
    started = time.perf_counter()

    def step(name: str) -> None:
        nonlocal started
        steps.append(f"{name} {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()

    with conn.transaction():
        for shape in shapes.values():
            data.shape_build(conn, shape, user_id=user.id)
    step("trees")
    data.adjacency_build(conn)
    step("adjacency")
    conn.execute("ANALYZE")
    step("analyze")
    problems = {name: data.shape_consistency(conn, shape) for name, shape in shapes.items()}
    bad = {name: found for name, found in problems.items() if found}
    if bad:
        raise RuntimeError(f"inconsistent datasets: {bad}")
    step("consistency checks")
    world = World(conn=conn, user_id=user.id, shapes=shapes)
    for name in RESTORED:
        world.snapshots[name] = snapshot_take(conn, shapes[name].chat_id)
    step("snapshots")
    sizes = ", ".join(
        f"{name} {s.message_count} messages / {len(s.branches)} branches / route {s.route_length}"
        for name, s in shapes.items()
    )
    comment(f"datasets: {sizes}")
    comment(f"built, checked (the tree rules, the counts) and snapshotted: {', '.join(steps)}")
    return world


# ---------------------------------------------------------------------------------------------
# Checks: the datasets are what the figures say


MESSAGE_ID = re.compile(r'data-message-id="([0-9a-f-]{36})"')


def page_route_problem(html: str, shape: data.Shape) -> str | None:
    """Whether a chat page shows the dataset's route: its messages, in order, must be the
    route's last ones (all of them today; a window of the latest after the rework)."""
    shown = [uuid.UUID(found) for found in MESSAGE_ID.findall(html)]
    expected = shape.route_ids()
    if not shown:
        return "no message on the page"
    if shown != expected[len(expected) - len(shown) :]:
        return f"{len(shown)} messages shown, not the route's last {len(shown)}"
    return None


def route_problem(route: Any, shape: data.Shape) -> str | None:
    got = route_comparable(route)
    if got and isinstance(got[0], tuple):
        expected: list[Any] = [
            (shape.branch_ids[b], first, last) for b, first, last in shape.route_runs
        ]
    else:
        expected = shape.route_ids()
    if got != expected:
        return f"route of {shape.name}: {len(got)} items, expected {len(expected)}"
    return None


def chat_of(shape: data.Shape) -> Any:
    from chats.models import Chat

    return Chat.objects.get(id=shape.chat_id)
