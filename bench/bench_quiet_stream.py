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

Set-up as in bench_streaming.py: a scratch database `vero_bench_quiet_<pid>` next to
DATABASE_URL's (dropped at the end), the fake provider in this process, servers started with
bench/_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")

import aiohttp  # noqa: E402
from bench_streaming import (  # noqa: E402
    Client,
    Server,
    _free_port,
    _migrate,
    _tokens,
    _url_with_db,
    comment,
    database_create,
    database_drop,
    report,
    server_wait,
)

QUIET_SECONDS = 25.0
TOKENS_BEFORE = 3
TOKENS = 6
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _server_start(database_url: str, log: Path, redis_url: str) -> Server:
    """A server with the environment's settings (keep-alive interval included), on Redis or
    not."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG")}
    env.update(DATABASE_URL=database_url, SECURE_COOKIES="false", REDIS_URL=redis_url)
    command = [sys.executable, str(ROOT / "bench" / "_server.py"), "-b", "127.0.0.1", "-p",
               str(port), "vero.asgi:application"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return Server(process=process, port=port, log=log)


async def _largest_silence(sender: Server, reader: Server, fake: Any) -> tuple[float, str]:
    """Send a quiet answer through `sender`, follow it on `reader`: the longest time between
    two chunks, and the answer's final status."""
    from tests.chats.helpers import sse_events
    from tests.fake_provider import Script

    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{sender.base}/") as response:
            assert response.status == 200, response.status
        csrf = next(cookie.value for cookie in jar if cookie.key == "csrftoken")
        fake.enqueue(
            Script(text=_tokens(TOKENS), delay=0.01, pause_after=TOKENS_BEFORE, pause=QUIET_SECONDS)
        )
        path, _answer = await Client(http=http, base=sender.base, csrf=csrf).send("", None)
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
    servers = [alone, *(pair or ())]
    await asyncio.gather(*(server_wait(server) for server in servers))
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


def main() -> int:
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is not set (make bench sets it through scripts/devdb.py)")
        return 1
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    dbname = f"vero_bench_quiet_{os.getpid()}"
    scratch_url = _url_with_db(base_url, dbname)
    began = time.perf_counter()
    database_create(base_url, dbname)
    servers: list[Server] = []
    fake: Any = None
    try:
        _migrate(scratch_url)
        os.environ["DATABASE_URL"] = scratch_url
        import django

        django.setup()
        from django.db import connection

        from models_registry.models import Tier
        from tests.conftest import fake_model_register
        from tests.fake_provider import FakeProvider

        fake = FakeProvider().start()
        fake_model_register(fake.base_url)
        Tier.objects.update(bucket_capacity=10_000, refill_amount=10_000)
        connection.close()
        logs = [Path(f"/tmp/{dbname}-server{index}.log") for index in range(3)]
        alone = _server_start(scratch_url, logs[0], redis_url="")
        servers.append(alone)
        pair: tuple[Server, Server] | None = None
        if _redis_answers(redis_url):
            pair = (
                _server_start(scratch_url, logs[1], redis_url),
                _server_start(scratch_url, logs[2], redis_url),
            )
            servers += pair
        else:
            comment(f"no Redis at {redis_url}: two processes not measured")
        asyncio.run(bench(alone, pair, fake))
        comment(f"total {time.perf_counter() - began:.0f} s")
        return 0
    finally:
        for server in servers:
            server.stop()
            server.log.unlink(missing_ok=True)
        if fake is not None:
            fake.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        database_drop(base_url, dbname)


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


if __name__ == "__main__":
    sys.exit(main())
