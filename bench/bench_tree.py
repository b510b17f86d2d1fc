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
- tree_structure_route_100000_{linear,branched}_ms: `structure_and_route` (_tree_adapters.py),
  in-process (ORM connection, rows fetched to Python); its statement count and whether one is
  recursive; tree_adjacency_route_100000_*_ms: the recursive CTE over the adjacency table
  (_tree_data.ADJACENCY_ROUTE_SQL: one step per message, following the selections). Every
  route, of both, is compared with the dataset's definition.
- tree_{select,edit,delete}_depth_{10,10000}_ms and *_x_vs_10: the htmx POST (HX-Request,
  X-CSRFToken from the page, CSRF cookie) at the end of the route of d4alt / d1, response
  read in full: select the other version of the last message (the response must show it),
  edit the last message (an answer) as a new version, delete it with scope=version (and
  tree_delete_{single,turn}_* when the long page takes under 1 s); the chat is put back
  (bench/_tree_snapshots.snapshot_restore) after every run.
- tree_append_depth_{10,10000,100000_branched}_ms: `append` (_tree_adapters.py) under the route's
  leaf of d4 / d1 / d3, then put back; tree_adjacency_append_*: the same on the adjacency table.
- tree_delete_single_rows_written: rows inserted, updated and deleted in chats_* tables by
  `delete_single` on the 5th message of d1, read inside the transaction before it is rolled
  back (pg_stat_get_xact_tuples_*); tree_adjacency_delete_single_rows_written: delete and
  reparent on the adjacency table.
- tree_map_100000_branched_ms: `tree_map` (_tree_adapters.py) on d3, in-process;
  tree_adjacency_map_100000_branched_ms: the adjacency rows (one query) mapped in Python.

Slow figures repeat while their time budget lasts (at least once): today's code takes
seconds per long-chat request. The output says how many runs each median has.
BENCH_TREE_PHASES=inprocess,http runs only some phases.

Layout: this file sets up and runs the phases: the datasets (_tree_data.py, put back by
_tree_snapshots.py) and their checks (_tree_world.py), the app's API behind adapters
(_tree_adapters.py), the in-process figures (_tree_inprocess.py) and the HTTP ones
(_tree_http.py), over the harness every bench shares (_harness.py).
"""

from __future__ import annotations

import os
import sys
import time
import warnings

from _harness import Setup, bench_main, comment
from _server import Server
from _tree_http import browser_login, check_long_pages, phase_operations, phase_page
from _tree_inprocess import (
    phase_append,
    phase_map,
    phase_route,
    phase_rows_written,
    phase_statements,
)
from _tree_world import World, world_build

APP_NAME = "vero-bench-tree"  # the server's PGAPPNAME


def _run(setup: Setup) -> None:
    from tests.live_server import use_source_static_files

    use_source_static_files()  # the in-process pages, without collectstatic
    warnings.filterwarnings("ignore", message="No directory at")
    phases = [p for p in os.environ.get("BENCH_TREE_PHASES", "").split(",") if p]
    world = world_build(setup.scratch.conninfo)
    try:
        server: Server | None = None
        if not phases or "http" in phases:
            # It boots while the in-process phases run.
            server = setup.servers.start(env={"PGAPPNAME": APP_NAME})
        _phases_run(world, server, inprocess=not phases or "inprocess" in phases)
    finally:
        world.conn.close()


def main() -> int:
    comment(f"load_average_before_run: {os.getloadavg()[0]:.2f}")
    os.environ.pop("REDIS_URL", None)  # events stay in this process (pg_notify, unheard)
    return bench_main(_run)


def _phases_run(world: World, server: Server | None, *, inprocess: bool) -> None:
    if inprocess:
        for phase in (phase_route, phase_map, phase_rows_written, phase_append):
            started = time.perf_counter()
            phase(world)
            comment(f"phase {phase.__name__}: {time.perf_counter() - started:.0f} s")
        phase_statements(world)
    if server is not None:
        server.wait()
        browser = browser_login(world, server.port)
        started = time.perf_counter()
        page_seconds = phase_page(world, browser)
        phase_operations(world, browser, page_seconds)
        check_long_pages(world, browser, page_seconds)
        comment(f"phase http: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
