"""The conversation tree at scale: chat page, route, map, writes; adjacency list as baseline.

Why: a chat's cost must follow what is on screen, not the chat's length. These figures (the
tree issue's targets) show where the ltree-over-branches storage stands, each against the
same data in a plain adjacency-list table read with recursive CTEs, in the same run.

Set-up: a scratch database `vero_bench_<pid>` next to DATABASE_URL's (migrated in a
subprocess, dropped at the end even on failure). Datasets (bench/_tree_data.py, set-based
SQL, checked against their definition before anything is measured):
1. `d1`: a route of 10,000 messages (user/assistant alternating) where every 15th message,
   from the 10th on, has a second version (a one-message branch forked at its parent, made
   after it): 667 alternatives, 10,667 messages; the route keeps the first versions.
2. `d2`: 100,000 messages in one branch.
3. `d3`: 1,000 branches of 100 messages, 100,000 messages: each branch forked at the
   last-but-one message of the previous one, its first message the newest version of that
   branch's last; the route takes it every time (99,001 messages, 1,000 levels of forks).
4. `d4`: 10 messages, linear: the small reference.
   `d4alt`: dataset 1's rule on a 10-message route (one alternative, at the 10th message):
   the depth-10 counterpart of dataset 1 for select, edit and delete.
The baseline table `bench_adjacency` (id, chat_id, parent_id, role, parts, html,
selected_child_index, created_at; indexes on parent_id and chat_id) holds the same rows.

Figures (`name: value unit`, medians; `# target …: met/missed` after each with a target):
- tree_page_{10,10000}_{ms,kb}, tree_page_x_vs_10: GET /c/<chat>/ over HTTP against a Daphne
  server (bench/_server.py), logged in, to the last byte of the body (kb = 1,024 bytes). Each
  page (and d4alt's) is checked: its messages, in order, are the last ones of the route.
- tree_page_statements_{10,10000}: SQL statements of the same page in-process (Django's test
  client, CaptureQueriesContext), with the statements that differ when they do.
- tree_structure_route_100000_{linear,branched}_ms: `structure_and_route` (adapter below),
  in-process (ORM connection, rows fetched to Python); its statement count and whether one is
  recursive; tree_adjacency_route_100000_*_ms: the recursive CTE over the adjacency table
  (_tree_data.ADJACENCY_ROUTE_SQL: one step per message, following the selections). Every
  route, of both, is compared with the dataset's definition.
- tree_{select,edit,delete}_depth_{10,10000}_ms and *_x_vs_10: the htmx POST (HX-Request,
  X-CSRFToken from the page, CSRF cookie) at the end of the route of d4alt / d1, response
  read in full: select the other version of the last message (the response must show it),
  edit the last message (an answer) as a new version, delete it with scope=version (and
  tree_delete_{single,turn}_* when the long page takes under 1 s); the chat is put back
  (bench/_tree_data.snapshot_restore) after every run.
- tree_append_depth_{10,10000,100000_branched}_ms: `append` (adapter below) under the route's
  leaf of d4 / d1 / d3, then put back; tree_adjacency_append_*: the same on the adjacency table.
- tree_delete_single_rows_written: rows inserted, updated and deleted in chats_* tables by
  `delete_single` on the 5th message of d1, read inside the transaction before it is rolled
  back (pg_stat_get_xact_tuples_*); tree_adjacency_delete_single_rows_written: delete and
  reparent on the adjacency table.
- tree_map_100000_branched_ms: `tree_map` (adapter below) on d3, in-process;
  tree_adjacency_map_100000_branched_ms: the adjacency rows (one query) mapped in Python.

Slow figures repeat while their time budget lasts (at least once): today's code takes
seconds per long-chat request. The output says how many runs each median has.
BENCH_TREE_PHASES=inprocess,http runs only some phases.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")

sys.path.insert(0, str(ROOT / "bench"))

import _tree_data as data  # noqa: E402
import psycopg  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Adapters: every call into the app's tree API goes through one of these (one per figure), so
# a change of API is a change here. The HTTP figures use the real endpoints and need none.


def _structure() -> ModuleType | None:
    """The new branch-level structure API (chats.structure) when the app has it."""
    try:
        return importlib.import_module("chats.structure")
    except ImportError:
        return None


def structure_and_route(chat: Any) -> Any:
    """Figure tree_structure_route_*: the chat's structure and its active route.

    New API: chat_structure_load(chat=…).route() (a Route of segments). Today: the whole tree
    (chat_tree_load) and its active path (a list of message ids)."""
    structure = _structure()
    if structure is not None:
        return structure.chat_structure_load(chat=chat).route()
    from chats.selectors import chat_tree_load

    return chat_tree_load(chat=chat).active_path()


def route_comparable(route: Any) -> list[Any]:
    """What `structure_and_route` returned, as runs (branch id, first seq, last seq) for a
    Route, or as message ids for today's list, to compare with the dataset's definition."""
    if hasattr(route, "segments"):
        return [(s.branch_id, s.first.seq, s.last.seq) for s in route.segments]
    return list(route)


def tree_map(chat: Any) -> Any:
    """Figure tree_map_*: the server's work for the map endpoint (GET /c/<id>/map): the
    structure, the route, the runs between branch points, and their HTML."""
    from django.template.loader import render_to_string

    from chats.tree_views import map_nodes

    return render_to_string("chats/_map.html", {"nodes": map_nodes(chat=chat)})


def adjacency_tree_map(rows: list[tuple[Any, ...]], root_index: int | None) -> Any:
    """Baseline of tree_map_*: the same map built in Python from the adjacency table's rows
    (id, parent_id, created_at, selected_child_index, role, status), by the app's pure-Python
    builder. None when the app no longer has it (the baseline is then left out)."""
    try:
        from chats.tree import chat_tree_build
    except ImportError:
        return None
    return chat_tree_build(rows, root_index=root_index).tree_map()


def append(chat: Any, parent: Any) -> Any:
    """Figure tree_append_*: the whole append as a client of the service does it
    (transaction, chat lock, insert, selection, commit)."""
    from django.db import transaction

    from chats.models import Message
    from chats.tree_services import chat_lock, message_append

    with transaction.atomic():
        chat_lock(chat_id=chat.id)
        return message_append(
            chat=chat,
            parent=parent,
            role=Message.Role.USER,
            parts=[{"type": "text", "text": "One more question about the same subject."}],
        )


def delete_single(chat: Any, message: Any) -> Any:
    """Figure tree_delete_single_rows_written: delete only this message (children move up)."""
    from chats.delete_services import message_delete_single

    return message_delete_single(chat=chat, message=message)


# ---------------------------------------------------------------------------------------------
# Output


def report(
    name: str, value: float, unit: str, target: str | None = None, met: bool | None = None
) -> None:
    if unit in ("count", "rows", "statements"):
        shown = f"{value:.0f}"
    elif unit == "ratio" and value < 0.1:
        shown = f"{value:.4f}"
    elif unit == "ratio" or (unit == "ms" and value < 10):
        shown = f"{value:.2f}"
    else:
        shown = f"{value:.1f}"
    print(f"{name}: {shown} {unit}", flush=True)
    if target is not None:
        print(f"# target {target}: {'met' if met else 'missed'}", flush=True)


def comment(text: str) -> None:
    print(f"# {text}", flush=True)


def timed_runs(run: Callable[[], float], *, runs: int, budget: float) -> list[float]:
    """Call `run` (it returns its own measured seconds) up to `runs` times, at least once,
    and again only while one more call (as long as the slowest so far, its untimed part
    included) still ends within `budget` seconds."""
    results: list[float] = []
    started = time.perf_counter()
    slowest = 0.0
    while len(results) < runs and (not results or time.perf_counter() - started + slowest < budget):
        began = time.perf_counter()
        results.append(run())
        slowest = max(slowest, time.perf_counter() - began)
    return results


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


# ---------------------------------------------------------------------------------------------
# The scratch database


def _url_with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _conninfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


@dataclass
class World:
    conn: psycopg.Connection[Any]  # autocommit, for building, snapshots and restores
    user_id: uuid.UUID
    shapes: dict[str, data.Shape]
    snapshots: dict[str, data.Snapshot] = field(default_factory=dict)

    def restore(self, name: str) -> None:
        data.snapshot_restore(self.conn, self.snapshots[name])


SHAPES: dict[str, Callable[[], data.Shape]] = {
    "d1": lambda: data.shape_alternatives("d1", length=10_000, every=15, offset=9),
    "d2": lambda: data.shape_linear("d2", length=100_000),
    "d3": lambda: data.shape_deep_forks("d3", branches=1_000, per_branch=100),
    "d4": lambda: data.shape_linear("d4", length=10),
    "d4alt": lambda: data.shape_alternatives("d4alt", length=10, every=15, offset=9),
}


# Seconds a slow in-process figure may repeat for (it runs at least once).
ROUTE_BUDGET = 6.0

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
        world.snapshots[name] = data.snapshot_take(conn, shapes[name].chat_id)
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


# ---------------------------------------------------------------------------------------------
# In-process figures


def _chat(shape: data.Shape) -> Any:
    from chats.models import Chat

    return Chat.objects.get(id=shape.chat_id)


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
            chat = _chat(shape)
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
        value = ms(times)
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
        base_ms = ms(base)
        comment(f"{len(base)} runs of the recursive CTE, each route checked")
        report(f"tree_adjacency_route_100000_{kind}_ms", base_ms, "ms")
        report(f"tree_structure_route_100000_{kind}_x_vs_adjacency", value / base_ms, "ratio")


def phase_map(world: World) -> None:
    from django.db import connection

    shape = world.shapes["d3"]

    def run() -> float:
        chat = _chat(shape)
        began = time.perf_counter()
        tree_map(chat)
        return time.perf_counter() - began

    times = timed_runs(run, runs=7, budget=ROUTE_BUDGET)
    value = ms(times)
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
    report("tree_adjacency_map_100000_branched_ms", ms(base), "ms")
    report("tree_map_100000_branched_x_vs_adjacency", value / ms(base), "ratio")


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
        delete_single(_chat(shape), Message.objects.get(id=fifth))

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
        chat, parent = _chat(shape), Message.objects.get(id=shape.leaf)
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
    shallow = ms(app["10"])
    for label, _ in cases:
        value = ms(app[label])
        report(f"tree_append_depth_{label}_ms", value, "ms")
        report(f"tree_adjacency_append_depth_{label}_ms", ms(base[label]), "ms")
        report(f"tree_append_depth_{label}_x_vs_adjacency", value / ms(base[label]), "ratio")
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
        for index, (a, b) in enumerate(zip(small, large, strict=False)):
            if a.split()[:8] != b.split()[:8]:
                comment(f"statements differ from #{index}: {a[:120]!r} / {b[:120]!r}")
                break


# ---------------------------------------------------------------------------------------------
# Over HTTP, against a Daphne server


APP_NAME = "vero-bench-tree"
CSRF_IN_PAGE = re.compile(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def server_start(database_url: str, log: Path) -> Server:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG")}
    env.update(DATABASE_URL=database_url, SECURE_COOKIES="false", PGAPPNAME=APP_NAME)
    command = [sys.executable, str(ROOT / "bench" / "_server.py"), "-b", "127.0.0.1",
               "-p", str(port), "vero.asgi:application"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return Server(process=process, port=port, log=log)


@dataclass
class Browser:
    """One logged-in tab: keep-alive connection, the session and CSRF cookies, the page's
    CSRF token in X-CSRFToken and HX-Request on htmx requests, as htmx sends them."""

    port: int
    cookies: dict[str, str]
    token: str = ""
    conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, *, htmx: bool = False
    ) -> tuple[int, bytes, float]:
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Accept": "text/html,*/*",
        }
        body = None
        if htmx:
            headers.update({
                "HX-Request": "true",
                "HX-Target": "chat-body",
                "HX-Current-URL": f"http://127.0.0.1:{self.port}{path.rsplit('/m/', 1)[0]}/",
                "X-CSRFToken": self.token,
            })  # fmt: skip
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://127.0.0.1:{self.port}"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            began = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                content = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            took = time.perf_counter() - began
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return response.status, content, took
        raise AssertionError("unreachable")


def server_wait(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.1)
    raise RuntimeError("server did not answer /healthz")


def browser_login(world: World, port: int) -> Browser:
    """A session made by Django's force_login (in this process, same database)."""
    from django.conf import settings
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(id=world.user_id))
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    browser = Browser(port=port, cookies={settings.SESSION_COOKIE_NAME: session})
    status, content, _ = browser.request("GET", f"/c/{world.shapes['d4'].chat_id}/")
    found = CSRF_IN_PAGE.search(content.decode())
    if status != 200 or found is None or "csrftoken" not in browser.cookies:
        raise RuntimeError(f"logged-in page answered {status} without a CSRF token")
    browser.token = found.group(1)
    return browser


def phase_page(world: World, browser: Browser) -> float:
    """The chat page, 10 and 10,000 messages; returns the 10,000-message page's median s."""

    def page(name: str) -> tuple[float, int]:
        status, content, took = browser.request("GET", f"/c/{world.shapes[name].chat_id}/")
        if status != 200:
            raise RuntimeError(f"page of {name} answered {status}")
        problem = page_route_problem(content.decode(), world.shapes[name])
        if problem:
            raise RuntimeError(f"page of {name}: {problem}")
        return took, len(content)

    page("d4")  # warm-up
    page("d4alt")  # checked only: the depth-10 chat of select, edit and delete
    sizes: dict[str, int] = {}

    def run(name: str) -> float:
        took, sizes[name] = page(name)
        return took

    small = timed_runs(lambda: run("d4"), runs=20, budget=10)
    large = timed_runs(lambda: run("d1"), runs=7, budget=25)
    comment(
        f"runs: {len(small)} (10 messages), {len(large)} (10,000); each page checked: it shows "
        "the end of the dataset's route, in order"
    )
    report("tree_page_10_ms", ms(small), "ms")
    report("tree_page_10_kb", sizes["d4"] / 1024, "kb")
    value = ms(large)
    report("tree_page_10000_ms", value, "ms", "<= 80 ms", value <= 80)
    kb = sizes["d1"] / 1024
    report("tree_page_10000_kb", kb, "kb", "<= 300 kb", kb <= 300)
    ratio = value / ms(small)
    report("tree_page_x_vs_10", ratio, "ratio", "<= 1.3", ratio <= 1.3)
    return statistics.median(large)


def phase_operations(world: World, browser: Browser, page_seconds: float) -> None:
    """Select, edit (a new version of an answer) and delete on the last message of the route
    at depth 10 and 10,000, each run on the chat as built (put back after every run)."""
    deep, shallow = world.shapes["d1"], world.shapes["d4alt"]
    alternative = {s.name: s.id_of(len(s.branches) - 1, 0) for s in (deep, shallow)}
    scopes = ["version"] if page_seconds > 1 else ["version", "single", "turn"]
    # (figure, path under /c/<chat>, form) for each operation, on a chat.
    Request = Callable[[data.Shape], tuple[str, dict[str, str]]]

    def select(shape: data.Shape) -> tuple[str, dict[str, str]]:
        # As the version switcher ("<" ">") posts it.
        return f"/m/{alternative[shape.name]}/select", {"sibling": "1"}

    def edit(shape: data.Shape) -> tuple[str, dict[str, str]]:
        return f"/m/{shape.leaf}/edit", {"text": "A shorter answer.", "mode": "version"}

    def delete(scope: str) -> Request:
        return lambda shape: (f"/m/{shape.leaf}/delete", {"scope": scope})

    operations: list[tuple[str, Request]] = [("select", select), ("edit", edit)]
    operations += [("delete" if s == "version" else f"delete_{s}", delete(s)) for s in scopes]
    if len(scopes) == 1:
        comment(
            "delete: scope=version (this version and what follows); scopes single and turn are "
            "measured too when the long page takes under 1 s"
        )
    for name, request in operations:
        sizes: dict[str, int] = {}

        def run(
            shape: data.Shape,
            name: str = name,
            request: Any = request,
            sizes: dict[str, int] = sizes,
        ) -> float:
            suffix, form = request(shape)
            # As the page does: the tree version it shows (chat.js adds it to every POST).
            form = {**form, "version": str(tree_version(shape.chat_id))}
            path = f"/c/{shape.chat_id}{suffix}"
            status, content, took = browser.request("POST", path, form, htmx=True)
            if status != 200:
                raise RuntimeError(f"{name} on {shape.name} answered {status}: {content[:300]!r}")
            sizes[shape.name] = len(content)
            if name == "select":  # the body now ends with the version just selected
                shown = MESSAGE_ID.findall(content.decode())
                if not shown or uuid.UUID(shown[-1]) != alternative[shape.name]:
                    raise RuntimeError(f"select on {shape.name}: the version is not shown")
            world.restore(shape.name)
            return took

        run(shallow)  # warm-up
        small = timed_runs(functools.partial(run, shallow), runs=15, budget=6)
        large = timed_runs(functools.partial(run, deep), runs=7, budget=12)
        comment(f"{name}: {len(small)} runs at depth 10, {len(large)} at depth 10,000")
        report(f"tree_{name}_depth_10_ms", ms(small), "ms")
        report(f"tree_{name}_depth_10000_ms", ms(large), "ms")
        report(f"tree_{name}_depth_10000_kb", sizes[deep.name] / 1024, "kb")
        ratio = ms(large) / ms(small)
        report(f"tree_{name}_depth_10000_x_vs_10", ratio, "ratio", "<= 1.5", ratio <= 1.5)


def tree_version(chat_id: Any) -> int:
    from chats.models import Chat

    return int(Chat.objects.filter(id=chat_id).values_list("tree_version", flat=True).get())


def check_long_pages(world: World, browser: Browser, page_seconds: float) -> None:
    """The 100,000-message chats' pages show their routes (only when pages are fast)."""
    if page_seconds > 1:
        comment(
            "pages of the 100,000-message chats not fetched (the 10,000-message page takes "
            f"{page_seconds:.1f} s here); their routes were checked in-process"
        )
        return
    for name in ("d2", "d3"):
        status, content, took = browser.request("GET", f"/c/{world.shapes[name].chat_id}/")
        problem = page_route_problem(content.decode(), world.shapes[name])
        if status != 200 or problem:
            raise RuntimeError(f"page of {name} answered {status}: {problem}")
        comment(f"page of {name}: {took * 1000:.0f} ms, {len(content) / 1024:.0f} kb, route ok")


# ---------------------------------------------------------------------------------------------


def _migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def main() -> int:
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is not set (make bench sets it through scripts/devdb.py)")
        return 1
    phases = [p for p in os.environ.get("BENCH_TREE_PHASES", "").split(",") if p]
    dbname = f"vero_bench_{os.getpid()}"
    scratch_url = _url_with_db(base_url, dbname)
    began = time.perf_counter()
    comment(f"load_average_before_run: {os.getloadavg()[0]:.2f}")
    with psycopg.connect(_conninfo(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    server: Server | None = None
    world: World | None = None
    log = Path(f"/tmp/{dbname}-server.log")
    keep_log = False
    try:
        _migrate(scratch_url)
        os.environ["DATABASE_URL"] = scratch_url
        os.environ.pop("REDIS_URL", None)  # events stay in this process (pg_notify, unheard)
        import warnings

        import django

        django.setup()
        from tests.live_server import use_source_static_files

        use_source_static_files()  # the in-process pages, without collectstatic
        warnings.filterwarnings("ignore", message="No directory at")
        world = world_build(_conninfo(scratch_url))
        if not phases or "http" in phases:
            server = server_start(scratch_url, log)  # boots while the in-process phases run
        if not phases or "inprocess" in phases:
            for phase in (phase_route, phase_map, phase_rows_written, phase_append):
                started = time.perf_counter()
                phase(world)
                comment(f"phase {phase.__name__}: {time.perf_counter() - started:.0f} s")
            phase_statements(world)
        if server is not None:
            server_wait(server)
            browser = browser_login(world, server.port)
            started = time.perf_counter()
            page_seconds = phase_page(world, browser)
            phase_operations(world, browser, page_seconds)
            check_long_pages(world, browser, page_seconds)
            comment(f"phase http: {time.perf_counter() - started:.0f} s")
        comment(f"total {time.perf_counter() - began:.0f} s")
        return 0
    except BaseException:
        if log.exists():
            lines = [line for line in log.read_text().splitlines() if '" 200 ' not in line]
            sys.stderr.write(f"--- server log ({log}) ---\n" + "\n".join(lines[-60:]) + "\n")
            keep_log = True
        raise
    finally:
        if server is not None:
            server.stop()
        if world is not None:
            world.conn.close()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with psycopg.connect(_conninfo(base_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if not keep_log:
            log.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
