"""The largest silence a reader of a quiet answer sees, on one process and across two.

A quiet answer: a few tokens, then `QUIET_SECONDS` of nothing from the provider (a model
thinking, a tool running), then the rest. Proxies drop connections idle for 30 to 60 s, so
every stream must write something (a keep-alive comment) at least every
`STREAM_KEEPALIVE_SECONDS`; this bench measures the longest time between two chunks the
reader received, over the whole answer.

- quiet_stream_largest_silence_one_process: one Daphne server without Redis; the reader
  follows the answer on the process that generates it.
- quiet_stream_largest_silence_two_processes: two Daphne servers sharing Redis (REDIS_URL,
  else redis://127.0.0.1:6379/0); the answer is sent to one and followed on the other, through
  the relay (`chats.relay`).

Baseline: the keep-alive interval in force (`quiet_stream_keepalive_interval`), with each
silence's ratio to it (at most 1.0 when every stream keeps its promise). Both answers run at
once, so the bench takes about QUIET_SECONDS plus the servers' start.

Set-up through the benches' harness (bench/_harness.py), as in bench_streaming.py: a scratch
database `vero_bench_quiet_<pid>` next to DATABASE_URL's (dropped at the end), the fake
provider in this process, servers started with bench/_server.py.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from typing import Any

import aiohttp
from _client import guest_client
from _harness import Setup, bench_main, comment, report, tokens
from _server import Server

QUIET_SECONDS = 25.0
TOKENS_BEFORE = 3
TOKENS = 6
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def _largest_silence(sender: Server, reader: Server, fake: Any) -> tuple[float, str]:
    """Send a quiet answer through `sender`, follow it on `reader`: the longest time between
    two chunks, and the answer's final status."""
    from tests.chats.helpers import sse_events
    from tests.fake_provider import Script

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = await guest_client(http, sender.base)
        fake.enqueue(
            Script(text=tokens(TOKENS), delay=0.01, pause_after=TOKENS_BEFORE, pause=QUIET_SECONDS)
        )
        path, _answer = await client.send("", None)
        times: list[float] = []
        body = b""
        headers = {"Accept": "text/event-stream"}  # as a browser's EventSource asks
        timeout = aiohttp.ClientTimeout(total=QUIET_SECONDS + 60)
        async with http.get(
            f"{reader.base}{path}?after=0", headers=headers, timeout=timeout
        ) as response:
            async for chunk in response.content.iter_any():
                times.append(time.perf_counter())
                body += chunk
    events = sse_events(body)
    status = events[-1][2]["status"] if events and events[-1][1] == "done" else "without an end"
    return max(b - a for a, b in itertools.pairwise(times)), status


async def bench(alone: Server, pair: tuple[Server, Server] | None, fake: Any) -> None:
    from django.conf import settings

    interval = float(settings.STREAM_KEEPALIVE_SECONDS)
    report("quiet_stream_keepalive_interval", interval, "s", note="baseline: the promise")
    running = [alone, *(pair or ())]
    await asyncio.gather(*(asyncio.to_thread(server.wait) for server in running))
    runs = [_largest_silence(alone, alone, fake)]
    if pair is not None:
        runs.append(_largest_silence(pair[0], pair[1], fake))
    results = await asyncio.gather(*runs)
    names = ["one_process", "two_processes"]
    for name, (silence, status) in zip(names, results, strict=False):
        report(f"quiet_stream_largest_silence_{name}", silence, "s", note=f"answer {status}")
        report(f"quiet_stream_largest_silence_{name}_vs_keepalive", silence / interval, "ratio")
    from models_registry.llm import llm_close

    await llm_close()


def _run(setup: Setup) -> None:
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    alone = setup.servers.start(env={"REDIS_URL": ""})
    pair: tuple[Server, Server] | None = None
    if _redis_answers(redis_url):
        shared = {"REDIS_URL": redis_url}
        pair = (setup.servers.start(env=shared), setup.servers.start(env=shared))
    else:
        comment(f"no Redis at {redis_url}: two processes not measured")
    asyncio.run(bench(alone, pair, setup.fake))


def main() -> int:
    return bench_main(
        _run, prefix="vero_bench_quiet", fake_bucket=10_000, keep_logs_on_failure=False
    )


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


if __name__ == "__main__":
    sys.exit(main())
