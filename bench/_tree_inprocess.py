"""bench_tree.py's in-process figures: route, map, rows written, append and page statements.

Why a module of its own: these figures call the app in this process (through
_tree_adapters.py) on the ORM's connection, without a server; bench_tree.py runs them while
the server of the HTTP figures boots.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import _tree_data as data
from _harness import comment, median_ms, statements_difference, timed_runs
from _tree_adapters import adjacency_tree_map, append, delete_single, structure_and_route, tree_map
from _tree_world import World, chat_of, page_route_problem, report, route_problem

# Seconds a slow in-process figure may repeat for (it runs at least once).
ROUTE_BUDGET = 6.0


def _captured(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = call()
    return result, [query["sql"] for query in captured.captured_queries]


def phase_route(world: World) -> None:
    """Structure + route of the 100,000-message chats, and the adjacency CTE's route."""
    from django.db import connection

    for name, kind in (("d2", "linear"), ("d3", "branched")):
        shape = world.shapes[name]

        statements: list[str] = []

        def run(shape: data.Shape = shape, statements: list[str] = statements) -> float:
            chat = chat_of(shape)
            began = time.perf_counter()
            route, captured = _captured(lambda: structure_and_route(chat))
            took = time.perf_counter() - began
            problem = route_problem(route, shape)
            if problem:
                raise RuntimeError(problem)
            statements[:] = captured
            return took

        times = timed_runs(run, runs=7, budget=ROUTE_BUDGET)
        recursive = sum("RECURSIVE" in sql.upper() for sql in statements)
        value = median_ms(times)
        comment(
            f"{len(times)} runs, each route checked against the dataset's definition; "
            "statements counted by CaptureQueriesContext"
        )
        report(f"tree_structure_route_100000_{kind}_ms", value, "ms", "<= 100 ms", value <= 100)
        report(
            f"tree_structure_route_100000_{kind}_statements",
            len(statements),
            "statements",
            "one query, no recursion",
            len(statements) == 1 and recursive == 0,
        )
        report(f"tree_structure_route_100000_{kind}_recursive_statements", recursive, "count")

        def adjacency(shape: data.Shape = shape) -> float:
            began = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(data.ADJACENCY_ROUTE_SQL, {"chat": shape.chat_id, "root": 0})
                ids = [row[0] for row in cursor.fetchall()]
            took = time.perf_counter() - began
            if ids != shape.route_ids():
                raise RuntimeError(f"the adjacency route of {shape.name} is not the dataset's")
            return took

        base = timed_runs(adjacency, runs=7, budget=ROUTE_BUDGET)
        base_ms = median_ms(base)
        comment(f"{len(base)} runs of the recursive CTE, each route checked")
        report(f"tree_adjacency_route_100000_{kind}_ms", base_ms, "ms")
        report(f"tree_structure_route_100000_{kind}_x_vs_adjacency", value / base_ms, "ratio")


def phase_map(world: World) -> None:
    from django.db import connection

    shape = world.shapes["d3"]

    def run() -> float:
        chat = chat_of(shape)
        began = time.perf_counter()
        tree_map(chat)
        return time.perf_counter() - began

    times = timed_runs(run, runs=7, budget=ROUTE_BUDGET)
    value = median_ms(times)
    comment(f"{len(times)} runs, in-process (server time: the query and the map's Python)")
    report("tree_map_100000_branched_ms", value, "ms", "<= 50 ms", value <= 50)

    def adjacency() -> float | None:
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, parent_id, created_at, selected_child_index, role, 'complete' "
                "FROM bench_adjacency WHERE chat_id = %s",
                [shape.chat_id],
            )
            rows = cursor.fetchall()
        if adjacency_tree_map(rows, 0) is None:
            return None
        return time.perf_counter() - began

    if adjacency() is None:
        comment("no adjacency baseline for the map: chats.tree.chat_tree_build is gone")
        return
    base = timed_runs(lambda: adjacency() or 0.0, runs=7, budget=ROUTE_BUDGET)
    comment(f"{len(base)} runs + 1 warm-up: the adjacency rows (one query) mapped in Python")
    report("tree_adjacency_map_100000_branched_ms", median_ms(base), "ms")
    report("tree_map_100000_branched_x_vs_adjacency", value / median_ms(base), "ratio")


_ROWS_WRITTEN_SQL = """
SELECT c.relname, pg_stat_get_xact_tuples_inserted(c.oid), pg_stat_get_xact_tuples_updated(c.oid),
       pg_stat_get_xact_tuples_deleted(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
WHERE c.relkind = 'r' AND c.relname LIKE %s
"""


class _Rollback(Exception):
    pass


def _rows_written(write: Callable[[Any], None], pattern: str) -> tuple[int, str]:
    """Rows `write` inserts, updates and deletes in tables matching `pattern`, counted in its
    transaction before it is rolled back (nothing stays)."""
    from django.db import connection, transaction

    detail = ""
    total = 0
    with contextlib.suppress(_Rollback), transaction.atomic():
        with connection.cursor() as cursor:
            write(cursor)
            cursor.execute(_ROWS_WRITTEN_SQL, [pattern])
            rows = [row for row in cursor.fetchall() if any(row[1:])]
        total = sum(sum(row[1:]) for row in rows)
        detail = ", ".join(f"{r[0]} +{r[1]} ~{r[2]} -{r[3]}" for r in rows)
        raise _Rollback
    return total, detail


def phase_rows_written(world: World) -> None:
    from chats.models import Message

    shape = world.shapes["d1"]
    fifth = shape.id_of(0, 4)

    def app(_cursor: Any) -> None:
        delete_single(chat_of(shape), Message.objects.get(id=fifth))

    total, detail = _rows_written(app, "chats\\_%")
    comment(f"delete_single on the 5th message of d1 (rolled back): {detail}")
    report("tree_delete_single_rows_written", total, "rows", "<= 5 rows", total <= 5)

    def adjacency(cursor: Any) -> None:
        # Delete, reparent its children; the parent's selection is rewritten only if the
        # position of the child it shows changed (here it has one child before and after).
        cursor.execute("SELECT parent_id FROM bench_adjacency WHERE id = %s FOR UPDATE", [fifth])
        (parent,) = cursor.fetchone()
        cursor.execute("DELETE FROM bench_adjacency WHERE id = %s", [fifth])
        cursor.execute(
            "UPDATE bench_adjacency SET parent_id = %s WHERE parent_id = %s", [parent, fifth]
        )

    total, detail = _rows_written(adjacency, "bench\\_adjacency")
    comment(f"adjacency delete + reparent (rolled back): {detail}")
    report("tree_adjacency_delete_single_rows_written", total, "rows")


def phase_append(world: World) -> None:
    """Appends under the route's leaf at depth 10, 10,000 and 99,001, each put back after."""
    from django.db import connection, transaction

    from chats.models import Message

    cases = [("10", "d4"), ("10000", "d1"), ("100000_branched", "d3")]
    app: dict[str, list[float]] = {label: [] for label, _ in cases}
    base: dict[str, list[float]] = {label: [] for label, _ in cases}

    def app_once(shape: data.Shape) -> float:
        chat, parent = chat_of(shape), Message.objects.get(id=shape.leaf)
        began = time.perf_counter()
        append(chat, parent)
        took = time.perf_counter() - began
        world.restore(shape.name)
        return took

    def adjacency_once(shape: data.Shape) -> float:
        new_id = uuid.uuid4()
        began = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM chats_chat WHERE id = %s FOR NO KEY UPDATE", [shape.chat_id]
            )
            cursor.execute(
                "INSERT INTO bench_adjacency (id, chat_id, parent_id, role, parts, html, "
                "created_at) VALUES (%s, %s, %s, 'user', %s, '', now())",
                [new_id, shape.chat_id, shape.leaf,
                 '[{"type": "text", "text": "One more question about the same subject."}]'],
            )  # fmt: skip
            cursor.execute(
                "UPDATE bench_adjacency SET selected_child_index = "
                "(SELECT count(*) - 1 FROM bench_adjacency WHERE parent_id = %s) WHERE id = %s",
                [shape.leaf, shape.leaf],
            )
        took = time.perf_counter() - began
        world.conn.execute("DELETE FROM bench_adjacency WHERE id = %s", [new_id])
        world.conn.execute(
            "UPDATE bench_adjacency SET selected_child_index = NULL WHERE id = %s", [shape.leaf]
        )
        return took

    for _label, name in cases:  # warm-up: the first append of a process is slower
        app_once(world.shapes[name])
        adjacency_once(world.shapes[name])
    rounds = 0
    started = time.perf_counter()
    while rounds < 30 and (rounds < 3 or time.perf_counter() - started < 15):
        for label, name in cases:
            if label.startswith("100000") and rounds >= 10:
                continue
            app[label].append(app_once(world.shapes[name]))
            base[label].append(adjacency_once(world.shapes[name]))
        rounds += 1
    comment(
        f"{rounds} interleaved rounds (at most 10 at depth 100,000: restoring it takes longer); "
        "each append is put back before the next"
    )
    shallow = median_ms(app["10"])
    for label, _ in cases:
        value = median_ms(app[label])
        report(f"tree_append_depth_{label}_ms", value, "ms")
        report(f"tree_adjacency_append_depth_{label}_ms", median_ms(base[label]), "ms")
        report(f"tree_append_depth_{label}_x_vs_adjacency", value / median_ms(base[label]), "ratio")
        if label != "10":
            ratio = value / shallow
            report(f"tree_append_depth_{label}_x_vs_10", ratio, "ratio", "<= 1.2", ratio <= 1.2)


def page_statements(world: World, name: str) -> list[str]:
    from django.test import Client

    from accounts.models import User

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(User.objects.get(id=world.user_id))
    path = f"/c/{world.shapes[name].chat_id}/"
    response, statements = _captured(lambda: client.get(path))
    if response.status_code != 200:
        raise RuntimeError(f"in-process page of {name} answered {response.status_code}")
    problem = page_route_problem(response.content.decode(), world.shapes[name])
    if problem:
        raise RuntimeError(f"in-process page of {name}: {problem}")
    return statements


def phase_statements(world: World) -> None:
    from django.conf import settings

    # The registry cache (tiers, models) must not expire between the warm-up and the counted
    # request: a long page would otherwise count the registry's statements, a short one not.
    settings.REGISTRY_CACHE_SECONDS = 3600
    page_statements(world, "d4")  # warm-up: templates, the registry cache
    small = page_statements(world, "d4")
    large = page_statements(world, "d1")
    report("tree_page_statements_10", len(small), "statements")
    report(
        "tree_page_statements_10000",
        len(large),
        "statements",
        "equal to the 10-message page",
        len(small) == len(large),
    )
    if len(small) != len(large):
        statements_difference(small, large, words=8, chars=120)
