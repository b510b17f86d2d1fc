"""Streaming phase `wire`: the bytes of a 10,000-token answer on the wire, and the rows an
answer writes.

Why a module of its own: one phase of bench_streaming.py (its docstring names the figures),
each phase in its own module over the shared harness.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import psycopg
from _harness import comment, report, script, tokens
from _streaming_context import PACE, Context, answers_settled, wait_idle
from _streaming_data import WRITE_TABLES
from yarl import URL

WIRE_TOKENS = 10_000
WRITES_TOKENS = 250  # 5 s at 50 tokens/s


def table_writes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
        "WHERE relname = ANY(%s)",
        [list(WRITE_TABLES)],
    ).fetchall()
    return {name: int(count) for name, count in rows}


# A PostgreSQL 15 backend reports its table statistics at most once a second while busy, and
# an idle one (a pooled connection) only after 10 s: counters are final once nothing moved
# for longer than that.
STATS_QUIET_SECONDS = 11.0


async def table_writes_settled(
    conn: psycopg.Connection[Any], *, at_least: dict[str, int]
) -> dict[str, int]:
    """Poll until the counters reach `at_least` and stay put for STATS_QUIET_SECONDS."""
    deadline = time.monotonic() + 60
    previous: dict[str, int] | None = None
    still_since = time.monotonic()
    while True:
        current = await asyncio.to_thread(table_writes, conn)
        if current != previous:
            previous, still_since = current, time.monotonic()
        reached = all(current.get(name, 0) >= value for name, value in at_least.items())
        quiet = time.monotonic() - still_since >= STATS_QUIET_SECONDS
        if (reached and quiet) or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.5)


async def _raw_get(port: int, path: str, cookie: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    received = bytearray()
    while chunk := await reader.read(65536):
        received += chunk
    writer.close()
    return len(received), bytes(received)


def _dechunk(response: bytes) -> bytes:
    """The body of a raw HTTP/1.1 response in chunked encoding, without its framing (a large
    write may be split into several chunks anywhere, even inside an event)."""
    rest = response.split(b"\r\n\r\n", 1)[1]
    body = bytearray()
    while rest:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return bytes(body)


async def _raw_post(port: int, path: str, body: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
    writer.close()
    return total


def _connect_autocommit(conninfo: str) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, autocommit=True)


async def phase_wire_and_writes(ctx: Context) -> None:
    from tests.fake_provider import split_tokens

    await wait_idle(ctx.server)
    # A sync connection for the statistics views.
    monitor: psycopg.Connection[Any] = await asyncio.to_thread(_connect_autocommit, ctx.conninfo)
    try:
        # Bytes: 10,000 tokens, unpaced (the wire cost does not depend on the pace); the first
        # token waits 0.3 s so the stream request attaches before anything is generated.
        (chat_id, parent_id), (chat2, parent2) = ctx.take(2)
        ctx.fake.enqueue(script(WIRE_TOKENS, initial_delay=0.3))
        before = await table_writes_settled(monitor, at_least={})
        path, _ = await ctx.client.send(chat_id, parent_id)
        cookies = ctx.client.http.cookie_jar.filter_cookies(URL(ctx.client.base))
        cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
        start = time.perf_counter()
        size, body = await _raw_get(ctx.server.port, f"{path}?after=0", cookie)
        duration = time.perf_counter() - start
        texts = _dechunk(body).count(b"event: text\n")
        if texts != WIRE_TOKENS:
            raise RuntimeError(f"{texts} text events for {WIRE_TOKENS} tokens")
        after_long = await table_writes_settled(
            monitor, at_least={"chats_tokenusage": before.get("chats_tokenusage", 0) + 1}
        )
        done_at = body.rfind(b"event: done")
        report(
            "wire_bytes_10k_tokens",
            size,
            "bytes",
            "<= 1 MB (1,000,000 bytes)",
            size <= 1_000_000,
            f"(raw socket: headers, chunked framing and the final done event of "
            f"{len(body) - done_at} bytes with the rendered HTML)",
        )
        payload = orjson.dumps(
            {
                "model": "fake-model",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        ctx.fake.enqueue(script(WIRE_TOKENS))
        direct_size = await _raw_post(ctx.fake.port, "/v1/chat/completions", payload)
        report(
            "wire_bytes_10k_tokens_direct",
            direct_size,
            "bytes",
            note="the provider's own stream for the same answer",
        )
        report("wire_bytes_per_token", size / WIRE_TOKENS, "bytes")
        assert len(split_tokens("".join(tokens(WIRE_TOKENS)))) == WIRE_TOKENS

        long_writes = sum(after_long.values()) - sum(before.values()) - ctx.send_writes
        # Writes of one paced answer: everything from before the send to the end of the answer
        # (its TokenUsage row counted), minus the send's own writes (counted in-process).
        ctx.fake.enqueue(script(WRITES_TOKENS, delay=PACE))
        await answers_settled(ctx.conninfo)
        before = await table_writes_settled(monitor, at_least={})
        stream = await ctx.client.answer(chat2, parent2)
        after = await table_writes_settled(
            monitor, at_least={"chats_tokenusage": before.get("chats_tokenusage", 0) + 1}
        )
        if stream.status != "complete":
            raise RuntimeError(f"the answer ended {stream.status}")
        writes = sum(after.values()) - sum(before.values()) - ctx.send_writes
        answer_seconds = stream.ended - stream.started
        budget = 3 + int(answer_seconds)
        per_table = ", ".join(
            f"{name} {after.get(name, 0) - before.get(name, 0)}" for name in WRITE_TABLES
        )
        report(
            "db_writes_per_answer",
            writes,
            "count",
            f"<= 3 + 1 per second = {budget}",
            writes <= budget,
            f"({WRITES_TOKENS} tokens at 50 tokens/s, {answer_seconds:.1f} s; {per_table};"
            f" pg_stat_user_tables n_tup_ins+upd+del)",
        )
        report(
            "db_writes_10k_token_answer",
            long_writes,
            "count",
            note=f"(10,000 tokens unpaced in {duration:.1f} s)",
        )
        comment(
            f"the send's own {ctx.send_writes} row writes to these tables are not counted "
            "(measured in-process: pg_stat_xact_user_tables before its commit)"
        )
    finally:
        monitor.close()
