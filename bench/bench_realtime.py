"""Realtime sockets on a real Daphne server: how soon a committed write reaches a tab's socket,
and what an idle socket costs the server.

- realtime_event_latency_median / _p95: a transaction that publishes one event (as a service
  does: `pg_notify` inside it) commits; the clock runs from just before COMMIT until the
  event's frame arrives on a guest's socket (the server's listener, its registry, Daphne, the
  WebSocket). `EVENTS` events, one after another. Targets (issue 13): <= 50 / <= 150 ms.
  Baseline, same run, same method: the event received by a bare LISTEN connection in this
  process (`realtime_notify_baseline_*`), i.e. what PostgreSQL alone costs; the ratio says
  what the server adds.
- realtime_idle_socket_memory: the server's RSS growth per socket while `IDLE_SOCKETS` sockets
  (each a different guest, as many tabs of many people) sit open and idle, after
  `WARM_SOCKETS` warmed the path (the listener started, the modules imported). Target <= 50 KB.

Set-up through the benches' harness (bench/_harness.py): a scratch database
`vero_bench_realtime_<pid>` next to DATABASE_URL's, dropped at the end; one server started
with bench/_server.py, without LiteLLM's preload (its import would land in the RSS figure).
"""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
from _harness import Setup, bench_main, comment, p95, report
from _server import Server
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

EVENTS = 200
IDLE_SOCKETS = 1000
WARM_SOCKETS = 20
CONNECT_BATCH = 50
SETTLE_SECONDS = 3.0


def _nofile_raise(needed: int) -> None:
    """Let this process (and the server it starts) hold `needed` more descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = soft + needed if hard == resource.RLIM_INFINITY else min(hard, soft + needed)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _guest_cookie() -> str:
    from django.conf import settings

    from accounts.guests import guest_token_issue

    token = guest_token_issue(guest_id=uuid.uuid4())
    return f"{settings.GUEST_COOKIE_NAME}={token}"


def _guest_id(cookie: str) -> str:
    from accounts.guests import guest_token_verify

    claims = guest_token_verify(cookie.split("=", 1)[1])
    assert claims is not None
    return str(claims.guest_id)


async def _socket(server: Server, cookie: str) -> ClientConnection:
    """A tab's socket, open once `ready` arrived; no client pings (an idle tab)."""
    tab = await connect(
        f"ws://127.0.0.1:{server.port}/ws/",
        origin=Origin(server.base),
        additional_headers={"Cookie": cookie},
        ping_interval=None,
        open_timeout=60,
    )
    first = orjson.loads(await asyncio.wait_for(tab.recv(), 30))
    if first != {"type": "ready"}:
        raise RuntimeError(f"expected ready, got {first}")
    return tab


def _payload(user_id: str) -> str:
    from realtime.events import event_payload

    return event_payload(user_id=uuid.UUID(user_id), kind="chat.updated", chat_id=uuid.uuid4())


async def _commit_to_arrival(
    writer: psycopg.AsyncConnection[Any], user_id: str, arrived: Callable[[], Awaitable[object]]
) -> float:
    """Seconds from just before COMMIT of a publishing transaction to `arrived()` returning."""
    from realtime.events import CHANNEL, NOTIFY_SQL

    await writer.execute("BEGIN")
    payload = {"channel": CHANNEL, "payload": _payload(user_id)}
    await writer.execute(f"SELECT {NOTIFY_SQL}", payload)  # as `realtime.events.publish`
    started = time.perf_counter()
    await writer.execute("COMMIT")
    await arrived()
    return time.perf_counter() - started


async def _latencies(conninfo: str, server: Server) -> tuple[list[float], list[float]]:
    """Commit to arrival on a socket of the server, and on a bare LISTEN connection here."""
    from realtime.events import CHANNEL

    cookie = _guest_cookie()
    user_id = _guest_id(cookie)
    tab = await _socket(server, cookie)
    writer = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    listener = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    await listener.execute(f"LISTEN {CHANNEL}")

    async def on_socket() -> object:
        return await asyncio.wait_for(tab.recv(), 10)

    async def on_listen() -> object:
        async for note in listener.notifies(timeout=10, stop_after=1):
            return note
        raise TimeoutError("no notification")

    socket_times: list[float] = []
    listen_times: list[float] = []
    try:
        for _ in range(10):  # warm both paths
            await _commit_to_arrival(writer, user_id, on_socket)
        await listener.execute("UNLISTEN *")
        await listener.execute(f"LISTEN {CHANNEL}")
        for _ in range(EVENTS):
            socket_times.append(await _commit_to_arrival(writer, user_id, on_socket))
        # The server hears these too, for another user: its sockets stay quiet.
        for _ in range(EVENTS):
            listen_times.append(await _commit_to_arrival(writer, str(uuid.uuid4()), on_listen))
    finally:
        await tab.close()
        await writer.close()
        await listener.close()
    return socket_times, listen_times


async def _open_many(server: Server, count: int) -> list[ClientConnection]:
    tabs: list[ClientConnection] = []
    for start in range(0, count, CONNECT_BATCH):
        batch = min(CONNECT_BATCH, count - start)
        tabs += await asyncio.gather(*(_socket(server, _guest_cookie()) for _ in range(batch)))
    return tabs


async def _idle_memory_kb(server: Server) -> tuple[float, float, float]:
    """The server's RSS growth per idle socket (KB), and its RSS before and after (MB)."""
    warm = await _open_many(server, WARM_SOCKETS)
    await asyncio.sleep(SETTLE_SECONDS)
    before = server.rss_mb()
    tabs = await _open_many(server, IDLE_SOCKETS)
    gc.collect()
    await asyncio.sleep(SETTLE_SECONDS)
    after = server.rss_mb()
    await asyncio.gather(*(tab.close() for tab in [*warm, *tabs]))
    return (after - before) * 1024 / IDLE_SOCKETS, before, after


def _ms(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds) * 1000, p95(seconds) * 1000


async def bench(conninfo: str, server: Server) -> None:
    await asyncio.to_thread(server.wait)
    socket_times, listen_times = await _latencies(conninfo, server)
    median, high = _ms(socket_times)
    base_median, base_high = _ms(listen_times)
    note = f"over {len(socket_times)} events"
    report("realtime_event_latency_median", median, "ms", "<= 50 ms", median <= 50, note)
    report("realtime_event_latency_p95", high, "ms", "<= 150 ms", high <= 150, note)
    report("realtime_notify_baseline_median", base_median, "ms", note="baseline: a bare LISTEN")
    report("realtime_notify_baseline_p95", base_high, "ms")
    report("realtime_event_latency_median_vs_baseline", median / base_median, "ratio")
    per_socket, before, after = await _idle_memory_kb(server)
    report(
        "realtime_idle_socket_memory", per_socket, "KB", "<= 50 KB", per_socket <= 50,
        f"RSS {before:.1f} MB -> {after:.1f} MB with {IDLE_SOCKETS} more idle sockets",
    )  # fmt: skip


def _run(setup: Setup) -> None:
    server = setup.servers.start(env={"LLM_PRELOAD": "false"})
    comment(f"server pid {server.pid}")
    asyncio.run(bench(setup.scratch.conninfo, server))


def main() -> int:
    _nofile_raise(2 * (IDLE_SOCKETS + WARM_SOCKETS) + 256)
    return bench_main(_run, prefix="vero_bench_realtime", keep_logs_on_failure=False)


if __name__ == "__main__":
    sys.exit(main())
