"""Streaming phase `concurrent`: 100 streams at once against the same read directly, their
gaps, and the database connections the server holds meanwhile.

Why a module of its own: one phase of bench_streaming.py (its docstring names the figures),
each phase in its own module over the shared harness.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter

import psycopg
from _client import direct_answer
from _harness import comment, p95, report, script
from _streaming_context import PACE, Context, round_ok, server_round, wait_idle

CONCURRENT_STREAMS = 100
CONCURRENT_TOKENS = 200
CONCURRENT_ROUNDS = 2


async def _connections_free(conninfo: str) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT current_setting('max_connections')::int, count(*) FROM pg_stat_activity"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0]), int(row[0]) - int(row[1])


async def _concurrent_rounds(ctx: Context, streams: int) -> None:
    from models_registry.llm import llm_close

    ratios: list[float] = []
    server_gaps: list[float] = []
    direct_gaps: list[float] = []
    walls: list[tuple[float, float]] = []
    per_stream_ratios: list[float] = []
    busy_max = held_max = samples = streaming_busy_max = 0
    held_queries: Counter[str] = Counter()
    for _ in range(CONCURRENT_ROUNDS):
        await wait_idle(ctx.server)
        for _ in range(streams):
            ctx.fake.enqueue(script(CONCURRENT_TOKENS, delay=PACE))
        start = time.perf_counter()
        direct = await asyncio.gather(
            *(
                direct_answer(ctx.target, [{"role": "user", "content": "hi"}])
                for _ in range(streams)
            )
        )
        direct_wall = time.perf_counter() - start
        direct_gaps += [stream.max_gap for stream in direct]
        await asyncio.sleep(0.5)
        served = round_ok(await server_round(ctx, streams, CONCURRENT_TOKENS, PACE))
        if served.chunks != streams * CONCURRENT_TOKENS:
            raise RuntimeError(f"{served.chunks} chunks delivered")
        busy_max = max(busy_max, served.connections.busy_max)
        # Once every send has answered, only the streams run: what do they keep busy?
        all_sent = max(stream.sent for stream in served.streams)
        streaming_busy_max = max(streaming_busy_max, served.connections.busy_max_after(all_sent))
        if served.connections.total_max > held_max:
            held_max = served.connections.total_max
            held_queries = served.connections.total_max_queries
        samples += served.connections.samples
        server_gaps += [stream.max_gap for stream in served.streams]
        ratios.append(served.wall / direct_wall)
        walls.append((direct_wall, served.wall))
        per_stream_ratios.append(
            statistics.median(s.ended - s.started for s in served.streams)
            / statistics.median(s.ended - s.started for s in direct)
        )
    await llm_close()
    ratio = statistics.median(ratios)
    comment(
        f"{streams} streams x {CONCURRENT_TOKENS} tokens at 50 tokens/s, "
        f"{CONCURRENT_ROUNDS} rounds, wall direct/server: "
        + ", ".join(f"{d:.2f}/{s:.2f} s" for d, s in walls)
        + f"; median per-stream duration ratio {statistics.median(per_stream_ratios):.2f}"
    )
    report(f"concurrent_{streams}_vs_direct", ratio, "ratio", "<= 1.10", ratio <= 1.10)
    gap = p95(server_gaps) * 1000
    report("max_gap_p95", gap, "ms", "<= 100 ms", gap <= 100)
    report("max_gap_p95_direct", p95(direct_gaps) * 1000, "ms")
    report("max_gap_max", max(server_gaps) * 1000, "ms")
    report(
        "db_connections_busy_while_streaming_max",
        streaming_busy_max,
        "count",
        f"no connection held between checkpoints: far fewer than the {streams} streams "
        f"(<= {streams // 10})",
        streaming_busy_max <= streams // 10,
        "(active or idle in transaction, after the last send answered, pg_stat_activity every "
        "20 ms)",
    )
    _report_connections(streams, held_max, busy_max, samples, held_queries)


def _report_connections(
    streams: int, held: int, busy: int, samples: int, queries: Counter[str]
) -> None:
    report(
        "db_connections_open_max",
        held,
        "count",
        note=f"(the server's connections in any state, its pool's idle ones included, "
        f"pg_stat_activity every 20 ms, {samples} samples)",
    )
    report(
        "db_connections_busy_max",
        busy,
        "count",
        note="(active or idle in transaction, the sends included)",
    )
    for query, count in queries.most_common(3):
        comment(f"  at the peak, {count} connections: {query!r}")


async def phase_concurrent(ctx: Context) -> None:
    max_connections, free = await _connections_free(ctx.conninfo)
    attempt = await server_round(ctx, CONCURRENT_STREAMS, CONCURRENT_TOKENS, PACE)
    if not attempt.failures:
        await _concurrent_rounds(ctx, CONCURRENT_STREAMS)
        return
    reasons = Counter(failure.split(":", 2)[-1].strip()[:90] for failure in attempt.failures)
    report(
        f"concurrent_{CONCURRENT_STREAMS}_failed_answers",
        len(attempt.failures),
        "count",
        f"{CONCURRENT_STREAMS} concurrent streams complete",
        False,
        f"(max_connections {max_connections}, {free} free before the run; the server held "
        f"up to {attempt.connections.total_max} connections)",
    )
    for reason, count in reasons.most_common(3):
        comment(f"  {count} x {reason!r}")
    _report_connections(
        CONCURRENT_STREAMS,
        attempt.connections.total_max,
        attempt.connections.busy_max,
        attempt.connections.samples,
        attempt.connections.total_max_queries,
    )
    await asyncio.sleep(3)
    _, free = await _connections_free(ctx.conninfo)
    fallback = max(10, (free - 20) // 10 * 10)
    comment(f"measuring the rest with {fallback} streams, what this database's connections allow")
    await _concurrent_rounds(ctx, min(fallback, CONCURRENT_STREAMS))
