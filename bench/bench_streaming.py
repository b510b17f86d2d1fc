"""Streaming answers end to end: one Daphne server, guest clients, the fake provider.

Every figure is compared, in the same run, with calling the fake provider directly through
the same lean engine the server uses (`models_registry.llm.stream_completion`), so the
numbers are what the server adds. The machine is shared: measurements interleave the server
and the direct case and repeat, and ratios matter more than absolute values.

Set-up: a scratch database `vero_bench_<pid>` next to DATABASE_URL's (migrated in a
subprocess, dropped at the end even on failure), the fake provider in this process (a thread),
the fake model registered for every tier with a bucket large enough never to refuse, and ONE
Daphne server (bench/_server.py: `python -m vero.serve -b 127.0.0.1 -p PORT
vero.asgi:application`; REDIS_URL and DEBUG unset, default checkpoint interval, its
connections tagged with PGAPPNAME).

Figures (issue 4, `make bench`):
- ttft_*: from the client's POST /c/<chat>/send to the first `text` event on the SSE stream,
  minus the same pair-wise for a direct call (first TextDelta), in a 1-message chat and in a
  10,000-message chat (bulk SQL: one branch, alternating roles, seq 0..9999, parent links).
- send_sql_statements_*: statements of one send (middleware, view, service), counted
  in-process with CaptureQueriesContext around Django's test client (BEGIN/COMMIT excluded).
- cpu_per_chunk: Daphne's CPU time (/proc/<pid>/stat utime+stime, every thread) / text
  chunks delivered, 20 concurrent streams of 200 tokens at 50 tokens/s.
- concurrent_100_*: 100 streams of 200 tokens at 50 tokens/s started at once: wall time vs
  the same 100 streams read directly, the largest inter-chunk gap per stream (p95), and the
  server's database connections sampled from pg_stat_activity every 20 ms. When answers fail
  (every open stream holding a connection exhausts max_connections), that is reported and the
  rest is measured with as many streams as the database's free connections allow.
- wire_bytes_10k_tokens: every byte of the SSE response (headers, chunked framing, the final
  `done` event with the rendered HTML) for a 10,000-token answer, read with a raw socket.
- db_writes_per_answer: rows inserted/updated in chats_message, chats_tokenusage and
  chats_chat (pg_stat_user_tables, once every backend flushed) from before the send to the
  end of the answer, minus the send's own writes (its statements captured in-process).
- rss_*: Daphne's VmRSS once LiteLLM is imported in it (the server preloads it on its first
  request), and its growth over short answers after a warm-up; as many as fit the time box
  (the output line names how many when fewer than 10,000).

- new_chat_first_token_median, follow_up_first_token_median (issue 10): as a browser does it,
  from the send request to the first `text` event of the stream it then opens, for a new
  chat's first message (POST /c/send) and for a follow-up in that chat right after (its title
  request is over before the follow-up is sent), the provider's tokens 5 ms apart;
  new_chat_vs_follow_up is their ratio; *_send_response_median: the send's response alone.
  The *_browser figures time the same pairs in Chromium (Playwright), from Enter in the
  composer to the answer's first text on the page, as the issue measured them.

BENCH_STREAMING_PHASES=ttft,newchat,cpu,concurrent,wire,memory runs only some phases.

Layout: this file sets up and runs the phases; each phase is a module `_streaming_<phase>.py`
(the data and the rounds they share in _streaming_data.py and _streaming_context.py), over
the harness every bench shares (_harness.py, _client.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from _client import Client, guest_client
from _harness import Setup, bench_main, comment, report, script, statements_difference
from _server import Server
from _streaming_concurrent import phase_concurrent
from _streaming_context import (
    APP_NAME,
    LONG_CHAT_MESSAGES,
    Context,
    answers_settled,
    wait_idle,
)
from _streaming_cpu import phase_cpu
from _streaming_data import (
    chat_long_create,
    chats_short_create,
    send_statements,
    send_writes,
    user_model_resolve,
)
from _streaming_memory import phase_memory
from _streaming_newchat import phase_new_chat
from _streaming_ttft import phase_ttft
from _streaming_wire import phase_wire_and_writes

LITELLM_MARKER = "litellm/rust_bridge"  # a shared object LiteLLM's import maps


def server_has_litellm(server: Server) -> bool:
    return LITELLM_MARKER in Path(f"/proc/{server.pid}/maps").read_text()


async def bench(server: Server, fake: Any, dbname: str, conninfo: str) -> None:
    await asyncio.to_thread(server.wait)
    jar = aiohttp.CookieJar(unsafe=True)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as http:
        client = await guest_client(http, server.base)
        # The first send creates the guest's row and a chat (with a title request).
        fake.enqueue(script(3), script(3))
        await client.send("", None)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT user_id FROM chats_chat LIMIT 1").fetchone()
            assert row is not None
            user_id = str(row[0])

        # LiteLLM: the server imports it in the background on its first request.
        deadline = time.monotonic() + 90
        while not server_has_litellm(server) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await wait_idle(server)
        rss_litellm = server.rss_mb()
        loaded = server_has_litellm(server)
        report(
            "rss_with_litellm",
            rss_litellm,
            "MB",
            "<= 300 MB",
            rss_litellm <= 300 and loaded,
            "" if loaded else "(LiteLLM was NOT found in the server's memory map)",
        )
        ctx, statements = await _context_prepare(server, client, fake, user_id, dbname, conninfo)
        await wait_idle(server)
        phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("ttft", lambda: phase_ttft(ctx, *statements)),
            ("newchat", lambda: phase_new_chat(ctx)),
            ("cpu", lambda: phase_cpu(ctx)),
            ("concurrent", lambda: phase_concurrent(ctx)),
            ("wire", lambda: phase_wire_and_writes(ctx)),
            ("memory", lambda: phase_memory(ctx, rss_litellm)),
        ]
        only = [name for name in os.environ.get("BENCH_STREAMING_PHASES", "").split(",") if name]
        for name, phase in phases:
            if only and name not in only:
                continue
            # Each phase starts on a quiet server: no answer of an earlier phase still
            # finishing (it would count in this phase's CPU and writes).
            await answers_settled(conninfo)
            await wait_idle(server)
            started = time.perf_counter()
            await phase()
            comment(f"phase {name}: {time.perf_counter() - started:.0f} s")
    from chats.worker import _worker
    from models_registry.llm import llm_close

    await llm_close()
    if _worker.loop is not None:  # the in-process sends generated on this process's loop
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(llm_close(), _worker.loop))


async def _context_prepare(
    server: Server, client: Client, fake: Any, user_id: str, dbname: str, conninfo: str
) -> tuple[Context, tuple[int, int]]:
    """The phases' chats and model, the writes of one send, and the statements of a send in
    a 1-message and in the 10,000-message chat."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        started = time.perf_counter()
        long_chat, long_tip = chat_long_create(conn, user_id, LONG_CHAT_MESSAGES)
        short = chats_short_create(conn, user_id, 12_000)
        conn.execute("ANALYZE")
        comment(f"data built in {time.perf_counter() - started:.1f} s")
    target = await asyncio.to_thread(user_model_resolve, user_id)

    # Statements of one send, in this process: a warm-up send, then one of each size.
    # The first answers after its send commits (its rows are not visible before).
    fake.enqueue(script(1, initial_delay=1.0), script(1), script(1), script(1))
    writes_chat, writes_parent = short.pop()
    writes_of_send = await asyncio.to_thread(send_writes, user_id, writes_chat, writes_parent)
    warm_chat, warm_parent = short.pop()
    await asyncio.to_thread(send_statements, user_id, warm_chat, warm_parent)
    small_chat, small_parent = short.pop()
    small_sql, _ = await asyncio.to_thread(send_statements, user_id, small_chat, small_parent)
    long_sql, long_tip = await asyncio.to_thread(send_statements, user_id, long_chat, long_tip)
    await answers_settled(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # as the chats' open pages show
        rows = conn.execute("SELECT id, tree_version FROM chats_chat WHERE user_id = %s", [user_id])
        client.versions.update({str(chat): str(version) for chat, version in rows})
    if len(small_sql) != len(long_sql):
        statements_difference(small_sql, long_sql, words=6, chars=100)
    ctx = Context(
        server=server,
        client=client,
        fake=fake,
        target=target,
        user_id=user_id,
        dbname=dbname,
        conninfo=conninfo,
        short_chats=short,
        long_chat=long_chat,
        long_tip=long_tip,
        send_writes=writes_of_send,
    )
    return ctx, (len(small_sql), len(long_sql))


def _run(setup: Setup) -> None:
    # The in-process test client warns that collectstatic never ran: not a bench matter.
    warnings.filterwarnings("ignore", message="No directory at")
    # The default checkpoint interval, whatever this environment sets.
    unset = ["GENERATION_CHECKPOINT_SECONDS"]
    server = setup.servers.start(env={"PGAPPNAME": APP_NAME}, unset=unset)
    asyncio.run(bench(server, setup.fake, setup.scratch.name, setup.scratch.conninfo))


def main() -> int:
    return bench_main(_run, fake_bucket=10_000_000)


if __name__ == "__main__":
    sys.exit(main())
