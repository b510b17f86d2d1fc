"""What the streaming bench's phases share: their context, quiet points and rounds of streams.

Why a module of its own: every phase (bench_streaming.py and its `_streaming_*` modules) starts
on a quiet server, takes prepared chats from the same context and, for CPU and concurrency,
runs the same rounds of simultaneous answers while it samples the server's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg
from _client import Client, Stream
from _harness import script
from _server import Server

APP_NAME = "vero-bench-server"  # the server's PGAPPNAME, to find its connections
PACE = 0.02  # 50 tokens/s
LONG_CHAT_MESSAGES = 10_000


@dataclass
class Context:
    server: Server
    client: Client
    fake: Any
    target: Any
    user_id: str
    dbname: str
    conninfo: str
    short_chats: list[tuple[str, str]]
    long_chat: str
    long_tip: str
    send_writes: int

    def take(self, count: int) -> list[tuple[str, str]]:
        taken, self.short_chats = self.short_chats[:count], self.short_chats[count:]
        if len(taken) < count:
            raise RuntimeError("the bench ran out of prepared chats")
        return taken


async def wait_idle(server: Server, *, quiet_ms: float = 20.0, timeout: float = 60.0) -> None:
    """Wait until the server burns less than `quiet_ms` of CPU per 0.5 s."""
    deadline = time.monotonic() + timeout
    last = server.cpu_seconds()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = server.cpu_seconds()
        if (now - last) * 1000 < quiet_ms:
            return
        last = now


async def answers_settled(conninfo: str) -> None:
    """Wait until no answer is streaming (those generated in this process included)."""
    deadline = time.monotonic() + 30
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            cursor = await conn.execute(
                "SELECT count(*) FROM chats_message WHERE status = 'streaming'"
            )
            row = await cursor.fetchone()
            if row is not None and row[0] == 0:
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("answers generated in this process did not finish")


async def fake_idle(fake: Any, timeout: float = 30.0) -> None:
    """Wait until the fake provider has no script left and no answer in progress."""
    deadline = time.monotonic() + timeout
    while fake.pending_scripts or fake.answers_in_progress:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake provider did not go idle")
        await asyncio.sleep(0.01)


BUSY_STATES = ("active", "idle in transaction")


class ConnectionSampler:
    """Samples the server's connections to the scratch database in pg_stat_activity."""

    def __init__(self, conninfo: str, dbname: str) -> None:
        self.conninfo = conninfo
        self.dbname = dbname
        self.busy_max = 0  # active or idle in transaction
        self.total_max = 0
        self.total_max_queries: Counter[str] = Counter()
        self.samples = 0
        self.log: list[tuple[float, int]] = []  # (perf_counter, busy connections)
        self._stop = asyncio.Event()

    def busy_max_after(self, moment: float) -> int:
        """The most busy connections in a sample taken after `moment`."""
        return max((busy for at, busy in self.log if at > moment), default=0)

    async def run(self, interval: float = 0.02) -> None:
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop.is_set():
                cursor = await conn.execute(
                    "SELECT state, left(query, 70) FROM pg_stat_activity"
                    " WHERE datname = %s AND application_name = %s",
                    [self.dbname, APP_NAME],
                )
                rows = await cursor.fetchall()
                busy = sum(1 for state, _ in rows if state in BUSY_STATES)
                self.log.append((time.perf_counter(), busy))
                if busy > self.busy_max:
                    self.busy_max = busy
                if len(rows) > self.total_max:
                    self.total_max = len(rows)
                    self.total_max_queries = Counter(
                        f"{state}: {query}" for state, query in rows if state not in BUSY_STATES
                    )
                self.samples += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), interval)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Round:
    cpu: float
    wall: float
    streams: list[Stream]
    failures: list[str]
    connections: ConnectionSampler

    @property
    def chunks(self) -> int:
        return sum(len(stream.times) for stream in self.streams)


async def server_round(ctx: Context, streams: int, tokens: int, delay: float) -> Round:
    """`streams` answers started at once; failures are collected, not raised."""
    for _ in range(streams):
        ctx.fake.enqueue(script(tokens, delay=delay))
    chats = ctx.take(streams)
    sampler = ConnectionSampler(ctx.conninfo, ctx.dbname)
    sampling = asyncio.create_task(sampler.run())
    await asyncio.sleep(0.05)
    cpu_before = ctx.server.cpu_seconds()
    start = time.perf_counter()
    results = await asyncio.gather(
        *(ctx.client.answer(chat, parent) for chat, parent in chats), return_exceptions=True
    )
    wall = time.perf_counter() - start
    await asyncio.sleep(0.3)  # stream teardown
    cpu = ctx.server.cpu_seconds() - cpu_before
    sampler.stop()
    await sampling
    done = [result for result in results if isinstance(result, Stream)]
    failures = [f"{type(r).__name__}: {str(r)[:160]}" for r in results if not isinstance(r, Stream)]
    failures += [f"{s.status}: {s.error}" for s in done if s.status != "complete"]
    # The leftover scripts of failed sends would answer the next requests: drop them.
    ctx.fake.reset()
    return Round(cpu=cpu, wall=wall, streams=done, failures=failures, connections=sampler)


def round_ok(round_: Round) -> Round:
    if round_.failures:
        raise RuntimeError(f"{len(round_.failures)} answers failed: {round_.failures[:3]}")
    return round_
