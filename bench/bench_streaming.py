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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
from yarl import URL  # noqa: E402

MODEL = "fake:fake-model"
APP_NAME = "vero-bench-server"
LITELLM_MARKER = "litellm/rust_bridge"  # a shared object LiteLLM's import maps
CLK_TCK = os.sysconf("SC_CLK_TCK")

TTFT_SAMPLES = 30
TTFT_TOKENS = 5
PACE = 0.02  # 50 tokens/s
CPU_STREAMS = 20
CPU_TOKENS = 200
CPU_ROUNDS = 3
CONCURRENT_STREAMS = 100
CONCURRENT_TOKENS = 200
CONCURRENT_ROUNDS = 2
WIRE_TOKENS = 10_000
WRITES_TOKENS = 250  # 5 s at 50 tokens/s
LONG_CHAT_MESSAGES = 10_000
MEMORY_WARMUP = 500  # 1,000 in the issue: too slow here (see the output)
MEMORY_MAX = 10_000
MEMORY_BUDGET_SECONDS = 240.0
MEMORY_CONCURRENCY = 40
MEMORY_FIRST_TOKEN_DELAY = 0.3  # the stream attaches before the answer starts
MEMORY_TOKENS = 5

STREAM_URL = re.compile(r'data-stream-url="(/c/[0-9a-f-]+/m/([0-9a-f-]+)/stream)"')
WORDS = ("the ", "quick ", "brown ", "fox ", "jumps ", "over ", "a ", "lazy ", "dog. ")


def _tokens(count: int) -> list[str]:
    return [WORDS[index % len(WORDS)] for index in range(count)]


# -- output -------------------------------------------------------------------------------------


def report(
    name: str,
    value: float,
    unit: str,
    target: str | None = None,
    met: bool | None = None,
    note: str = "",
) -> None:
    if unit in ("count", "bytes"):
        shown = f"{value:.0f}"
    elif unit == "ratio":
        shown = f"{value:.2f}"
    else:
        shown = f"{value:.1f}"
    print(f"{name}: {shown} {unit}", flush=True)
    if target is not None:
        print(
            f"# target {target}: {'met' if met else 'missed'}{' ' + note if note else ''}",
            flush=True,
        )
    elif note:
        print(f"# {note}", flush=True)


def comment(text: str) -> None:
    print(f"# {text}", flush=True)


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# -- the scratch database -----------------------------------------------------------------------


def _url_with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _conninfo(url: str) -> str:
    # psycopg wants postgresql:// or postgres://; Django's env also accepts other schemes.
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


def database_create(base_url: str, name: str) -> None:
    with psycopg.connect(_conninfo(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(base_url: str, name: str) -> None:
    with psycopg.connect(_conninfo(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the server process -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, so utime (14) and stime (15) are 11 and 12.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def has_litellm(self) -> bool:
        return LITELLM_MARKER in Path(f"/proc/{self.pid}/maps").read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def server_start(database_url: str, log: Path) -> Server:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG")}
    env.pop("GENERATION_CHECKPOINT_SECONDS", None)
    env.update(DATABASE_URL=database_url, SECURE_COOKIES="false", PGAPPNAME=APP_NAME)
    command = [
        sys.executable,
        str(ROOT / "bench" / "_server.py"),
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "vero.asgi:application",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return Server(process=process, port=port, log=log)


async def server_wait(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited: {server.log.read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{server.base}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not answer /healthz")


# -- one stream, through the server or directly -------------------------------------------------


@dataclass
class Stream:
    started: float
    sent: float = 0.0  # when the send's response arrived
    first: float | None = None
    times: list[float] = field(default_factory=list)
    ended: float = 0.0
    status: str = ""
    error: str = ""
    answer_id: str = ""
    chat_id: str = ""

    @property
    def ttft(self) -> float:
        assert self.first is not None, "no content arrived"
        return self.first - self.started

    @property
    def max_gap(self) -> float:
        return max((b - a for a, b in zip(self.times, self.times[1:], strict=False)), default=0.0)


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str
    csrf: str

    async def send(self, chat_id: str, parent_id: str | None, text: str = "hi") -> tuple[str, str]:
        data = {"text": text, "model": MODEL}
        if parent_id is not None:
            data["parent"] = parent_id
        headers = {"X-CSRFToken": self.csrf, "HX-Request": "true"}
        url = f"{self.base}/c/{chat_id}/send" if chat_id else f"{self.base}/c/send"
        async with self.http.post(url, data=data, headers=headers) as response:
            body = await response.text()
            if response.status != 200:
                raise RuntimeError(f"send answered {response.status}: {body[:300]}")
        found = STREAM_URL.search(body)
        if found is None:
            raise RuntimeError("no stream URL in the send response")
        return found.group(1), found.group(2)

    async def answer(self, chat_id: str, parent_id: str | None) -> Stream:
        """Send, then follow the answer's SSE stream to its `done` event."""
        stream = Stream(started=time.perf_counter())
        path, stream.answer_id = await self.send(chat_id, parent_id)
        stream.sent = time.perf_counter()
        stream.chat_id = path.split("/")[2]
        # As a browser's EventSource asks for it.
        headers = {"Accept": "text/event-stream"}
        async with self.http.get(f"{self.base}{path}?after=0", headers=headers) as response:
            buffer = b""
            async for chunk in response.content.iter_any():
                now = time.perf_counter()
                buffer += chunk
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    if b"event: text\n" in event:
                        if stream.first is None:
                            stream.first = now
                        stream.times.append(now)
                    elif b"event: done\n" in event:
                        data = event.split(b"\ndata: ", 1)[1]
                        done = orjson.loads(data)
                        stream.status = done.get("status", "?")
                        stream.error = done.get("error", "")
        stream.ended = time.perf_counter()
        return stream


async def direct_answer(target: Any, messages: Sequence[dict[str, str]]) -> Stream:
    from models_registry.calls import TextDelta
    from models_registry.llm import stream_completion

    stream = Stream(started=time.perf_counter())
    async for delta in stream_completion(target=target, messages=messages, max_tokens=4096):
        if isinstance(delta, TextDelta):
            now = time.perf_counter()
            if stream.first is None:
                stream.first = now
            stream.times.append(now)
    stream.ended = time.perf_counter()
    stream.status = "complete"
    return stream


def _script(count: int, *, delay: float = 0.0, initial_delay: float = 0.0) -> Any:
    from tests.fake_provider import Script

    return Script(text=_tokens(count), delay=delay, initial_delay=initial_delay)


# -- data ---------------------------------------------------------------------------------------

SHORT_CHATS_SQL = """
WITH c AS (
    INSERT INTO chats_chat (id, user_id, title, created_at, updated_at, settings,
                            root_message_index, fork_depth)
    SELECT gen_random_uuid(), %(user)s, 'bench ' || g, now(), now(), %(settings)s, 0, 0
    FROM generate_series(1, %(count)s) g
    RETURNING id
), b AS (
    INSERT INTO chats_branch (path, created_at, chat_id)
    SELECT '0000', now(), id FROM c
    RETURNING id, chat_id
)
INSERT INTO chats_message (id, seq, role, parts, model_id, status, error, html, stream_seq,
                           created_at, updated_at, branch_id, chat_id)
SELECT gen_random_uuid(), 0, 'user', '[{"type": "text", "text": "hello"}]', '', 'complete',
       '', '', 0, now(), now(), b.id, b.chat_id
FROM b
RETURNING chat_id, id
"""

LONG_CHAT_SQL = """
INSERT INTO chats_message (id, seq, role, parts, model_id, status, error, html, stream_seq,
                           created_at, updated_at, branch_id, chat_id, parent_id,
                           selected_child_index)
SELECT md5(%(chat)s || ':' || g)::uuid, g,
       CASE WHEN g %% 2 = 0 THEN 'user' ELSE 'assistant' END,
       jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'message ' || g)),
       CASE WHEN g %% 2 = 0 THEN '' ELSE %(model)s END,
       'complete', '', '', 0,
       now() - (%(count)s - g) * interval '1 millisecond',
       now() - (%(count)s - g) * interval '1 millisecond',
       %(branch)s, %(chat)s::uuid,
       CASE WHEN g = 0 THEN NULL ELSE md5(%(chat)s || ':' || (g - 1))::uuid END,
       CASE WHEN g < %(count)s - 1 THEN 0 END
FROM generate_series(0, %(count)s - 1) g
"""


def chats_short_create(
    conn: psycopg.Connection[Any], user_id: str, count: int
) -> list[tuple[str, str]]:
    from psycopg.types.json import Jsonb

    rows = conn.execute(
        SHORT_CHATS_SQL, {"user": user_id, "count": count, "settings": Jsonb({"model": MODEL})}
    ).fetchall()
    return [(str(chat), str(message)) for chat, message in rows]


def chat_long_create(conn: psycopg.Connection[Any], user_id: str, count: int) -> tuple[str, str]:
    from psycopg.types.json import Jsonb

    chat = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO chats_chat (id, user_id, title, created_at, updated_at, settings, "
        "root_message_index, fork_depth) VALUES (%s, %s, 'bench long', now(), now(), %s, 0, 0)",
        [chat, user_id, Jsonb({"model": MODEL})],
    )
    row = conn.execute(
        "INSERT INTO chats_branch (path, created_at, chat_id) VALUES ('0000', now(), %s) "
        "RETURNING id",
        [chat],
    ).fetchone()
    assert row is not None
    conn.execute(LONG_CHAT_SQL, {"chat": chat, "branch": row[0], "count": count, "model": MODEL})
    last = conn.execute(
        "SELECT id FROM chats_message WHERE chat_id = %s AND seq = %s", [chat, count - 1]
    ).fetchone()
    assert last is not None
    return chat, str(last[0])


def long_context(count: int) -> list[dict[str, str]]:
    """What the server sends the provider for the long chat: the newest CONTEXT_MAX_MESSAGES
    messages of the route, the new question last."""
    from django.conf import settings

    kept = settings.CONTEXT_MAX_MESSAGES - 1
    return [
        {"role": "user" if index % 2 == 0 else "assistant", "content": f"message {index}"}
        for index in range(max(0, count - kept), count)
    ] + [{"role": "user", "content": "hi"}]


# -- statements on the send path (in this process) ----------------------------------------------


def send_statements(user_id: str, chat_id: str, parent_id: str | None) -> tuple[list[str], str]:
    """The statements of one htmx send and its answer's id; no chat_id: a new chat's send."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    from accounts.guests import guest_token_issue

    client = DjangoClient(SERVER_NAME="127.0.0.1")
    client.cookies[settings.GUEST_COOKIE_NAME] = guest_token_issue(guest_id=uuid.UUID(user_id))
    url = f"/c/{chat_id}/send" if chat_id else "/c/send"
    data = {"text": "hi", "model": MODEL, **({"parent": parent_id} if parent_id else {})}
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, data, headers={"HX-Request": "true"})
    connection.close()
    body = response.content.decode()
    found = STREAM_URL.search(body)
    if response.status_code != 200 or found is None:
        raise RuntimeError(f"in-process send answered {response.status_code}: {body[:300]}")
    return [query["sql"] for query in captured.captured_queries], found.group(2)


def send_writes(user_id: str, chat_id: str, parent_id: str) -> int:
    """Rows one send writes to the counted tables: the send runs inside a transaction of this
    process, whose own statistics (pg_stat_xact_user_tables) are read before it commits."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.test import Client as DjangoClient

    from accounts.guests import guest_token_issue

    client = DjangoClient(SERVER_NAME="127.0.0.1")
    client.cookies[settings.GUEST_COOKIE_NAME] = guest_token_issue(guest_id=uuid.UUID(user_id))
    try:
        with transaction.atomic():
            response = client.post(
                f"/c/{chat_id}/send",
                {"text": "hi", "model": MODEL, "parent": parent_id},
                headers={"HX-Request": "true"},
            )
            if response.status_code != 200:
                raise RuntimeError(f"in-process send answered {response.status_code}")
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
                    " FROM pg_stat_xact_user_tables WHERE relname = ANY(%s)",
                    [list(WRITE_TABLES)],
                )
                row = cursor.fetchone()
        assert row is not None
        return int(row[0])
    finally:
        connection.close()


# -- database observers -------------------------------------------------------------------------


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


WRITE_TABLES = ("chats_message", "chats_tokenusage", "chats_chat")


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


# -- the bench ----------------------------------------------------------------------------------


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


async def phase_ttft(ctx: Context, statements_small: int, statements_long: int) -> None:
    context_long = long_context(LONG_CHAT_MESSAGES)
    short = [{"role": "user", "content": "hello"}, {"role": "user", "content": "hi"}]
    added_small: list[float] = []
    added_long: list[float] = []
    raw: dict[str, list[float]] = {
        name: [] for name in ("direct", "server", "direct_long", "server_long", "post", "post_long")
    }
    for chat_id, message_id in ctx.take(TTFT_SAMPLES):
        ctx.fake.enqueue(_script(TTFT_TOKENS, delay=PACE))
        direct = await direct_answer(ctx.target, short)
        ctx.fake.enqueue(_script(TTFT_TOKENS, delay=PACE))
        served = await ctx.client.answer(chat_id, message_id)
        ctx.fake.enqueue(_script(TTFT_TOKENS, delay=PACE))
        direct_long = await direct_answer(ctx.target, context_long)
        ctx.fake.enqueue(_script(TTFT_TOKENS, delay=PACE))
        served_long = await ctx.client.answer(ctx.long_chat, ctx.long_tip)
        ctx.long_tip = served_long.answer_id
        for stream in (served, served_long):
            if stream.status != "complete":
                raise RuntimeError(f"an answer ended {stream.status}")
        added_small.append(served.ttft - direct.ttft)
        added_long.append(served_long.ttft - direct_long.ttft)
        raw["direct"].append(direct.ttft)
        raw["server"].append(served.ttft)
        raw["direct_long"].append(direct_long.ttft)
        raw["server_long"].append(served_long.ttft)
        raw["post"].append(served.sent - served.started)
        raw["post_long"].append(served_long.sent - served_long.started)
    ms = 1000
    median_small = statistics.median(added_small) * ms
    comment(
        f"{TTFT_SAMPLES} interleaved pairs, first token after {PACE * 1000:.0f} ms at the "
        f"provider; raw medians: direct {statistics.median(raw['direct']) * ms:.1f} ms, "
        f"server {statistics.median(raw['server']) * ms:.1f} ms; 10k chat: direct "
        f"{statistics.median(raw['direct_long']) * ms:.1f} ms, server "
        f"{statistics.median(raw['server_long']) * ms:.1f} ms; of which the send's response: "
        f"{statistics.median(raw['post']) * ms:.1f} ms, 10k chat "
        f"{statistics.median(raw['post_long']) * ms:.1f} ms"
    )
    report("ttft_added_median", median_small, "ms", "<= 15 ms", median_small <= 15)
    p95_small = _p95(added_small) * ms
    report("ttft_added_p95", p95_small, "ms", "<= 30 ms", p95_small <= 30)
    median_long = statistics.median(added_long) * ms
    report("ttft_added_median_10k", median_long, "ms")
    report("ttft_added_p95_10k", _p95(added_long) * ms, "ms")
    ratio = median_long / median_small
    report("ttft_10k_vs_1", ratio, "ratio", "<= 1.2x the 1-message figure", ratio <= 1.2)
    report("send_sql_statements_1", statements_small, "count")
    report(
        "send_sql_statements_10k",
        statements_long,
        "count",
        "same count as the 1-message chat",
        statements_small == statements_long,
        "(Django CaptureQueriesContext around the test client, in-process; BEGIN/COMMIT excluded)",
    )


NEW_CHAT_SAMPLES = 30
NEW_CHAT_TOKENS = 20
NEW_CHAT_PACE = 0.005


async def _fake_idle(fake: Any, timeout: float = 30.0) -> None:
    """Wait until the fake provider has no script left and no answer in progress."""
    deadline = time.monotonic() + timeout
    while fake.pending_scripts or fake.answers_in_progress:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake provider did not go idle")
        await asyncio.sleep(0.01)


async def phase_new_chat(ctx: Context) -> None:
    """A new chat's first token against a follow-up's, each from the send request."""
    new_chat: list[float] = []
    follow_up: list[float] = []
    posts: dict[str, list[float]] = {"new": [], "follow": []}

    # The provider's first token comes almost at once (a provider's own delay would hide the
    # send's cost, which is what differs: the answer starts before the send's response is
    # rendered), and the answer still streams when the stream opens.
    def script() -> Any:
        return _script(NEW_CHAT_TOKENS, delay=NEW_CHAT_PACE)

    for _ in range(NEW_CHAT_SAMPLES):
        ctx.fake.enqueue(script(), _script(1))  # the answer, then a title
        created = await ctx.client.answer("", None)
        await _fake_idle(ctx.fake)
        ctx.fake.enqueue(script())
        followed = await ctx.client.answer(created.chat_id, created.answer_id)
        for stream in (created, followed):
            if stream.status != "complete":
                raise RuntimeError(f"an answer ended {stream.status}")
        new_chat.append(created.ttft)
        follow_up.append(followed.ttft)
        posts["new"].append(created.sent - created.started)
        posts["follow"].append(followed.sent - followed.started)
    ms = 1000
    new_median = statistics.median(new_chat) * ms
    follow_median = statistics.median(follow_up) * ms
    comment(
        f"{NEW_CHAT_SAMPLES} pairs (a new chat, then a follow-up in it); the provider sends "
        f"{NEW_CHAT_TOKENS} tokens, one every {NEW_CHAT_PACE * 1000:.0f} ms"
    )
    report("new_chat_send_response_median", statistics.median(posts["new"]) * ms, "ms")
    report("follow_up_send_response_median", statistics.median(posts["follow"]) * ms, "ms")
    report("new_chat_first_token_median", new_median, "ms")
    report("follow_up_first_token_median", follow_median, "ms")
    ratio = new_median / follow_median
    report("new_chat_vs_follow_up", ratio, "ratio", "<= 1.2x a follow-up's", ratio <= 1.2)
    await _new_chat_statements(ctx)
    await _new_chat_in_a_browser(ctx)


async def _new_chat_statements(ctx: Context) -> None:
    """The statements of a new chat's send and of a follow-up's in it, in this process (the
    second new chat's: the first fills this process's caches, as the server's are)."""
    for _ in range(2):
        ctx.fake.enqueue(_script(1), _script(1))  # the answer, then a title
        new_chat, answer_id = await asyncio.to_thread(send_statements, ctx.user_id, "", None)
        await _answers_settled(ctx.conninfo)
        await _fake_idle(ctx.fake)
    with psycopg.connect(ctx.conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT chat_id FROM chats_message WHERE id = %s", [answer_id]
        ).fetchone()
    assert row is not None
    chat_id = str(row[0])
    ctx.fake.enqueue(_script(1))
    follow_up, _ = await asyncio.to_thread(send_statements, ctx.user_id, chat_id, answer_id)
    await _answers_settled(ctx.conninfo)
    report("new_chat_send_sql_statements", len(new_chat), "count")
    report(
        "follow_up_send_sql_statements",
        len(follow_up),
        "count",
        "a new chat's no more than a follow-up's",
        len(new_chat) <= len(follow_up),
        "(Django CaptureQueriesContext around the test client, in-process, BEGIN/COMMIT included)",
    )


NEW_CHAT_BROWSER_SAMPLES = 15
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

# In the page: the time of Enter in the composer, and when the newest answer first shows text
# (a streamed delta, or the finished answer when it ended before its stream opened).
FIRST_TEXT_WATCH = """
() => {
  window.benchEnter = null;
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter") window.benchEnter = performance.now();
  }, true);
  window.benchArm = () => {
    window.benchFirst = null;
    const before = document.querySelectorAll("article.message-assistant").length;
    const observer = new MutationObserver(() => {
      const answers = document.querySelectorAll("article.message-assistant");
      if (answers.length <= before) return;
      const answer = answers[answers.length - 1];
      const live = answer.querySelector("[data-stream-text]");
      const text = live ? live.textContent : answer.querySelector(".message-content")?.textContent;
      if (text && text.trim()) {
        window.benchFirst = performance.now();
        observer.disconnect();
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  };
}
"""


async def _first_text_after_enter(page: Any, text: str) -> float:
    await page.evaluate("window.benchArm()")
    await page.locator("[data-send-button]:enabled").wait_for()
    composer = page.get_by_label("Message")
    await composer.fill(text)
    await composer.press("Enter")
    try:
        await page.wait_for_function("window.benchFirst !== null")
    except Exception:
        comment(f"no first text on {page.url}")
        raise
    elapsed = await page.evaluate("window.benchFirst - window.benchEnter")
    await page.locator("article.message-assistant.status-complete").last.wait_for()
    return float(elapsed) / 1000


async def _new_chat_in_a_browser(ctx: Context) -> None:
    """The same pairs in Chromium, from Enter to the answer's first text on the page."""
    if not Path(CHROMIUM).exists():
        comment(f"{CHROMIUM} is missing: the browser figures are skipped")
        return
    from playwright.async_api import async_playwright

    new_chat: list[float] = []
    follow_up: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        page = await (await browser.new_context(base_url=ctx.server.base)).new_page()
        page.set_default_timeout(15_000)
        for index in range(NEW_CHAT_BROWSER_SAMPLES + 1):  # the first pair warms up
            await page.goto("/")
            # As a person would: the page has loaded (htmx and chat.js are deferred) and is
            # quiet before they send.
            await page.wait_for_load_state("networkidle")
            await page.evaluate(FIRST_TEXT_WATCH)
            await page.get_by_label("Model").select_option(MODEL)
            ctx.fake.enqueue(_script(NEW_CHAT_TOKENS, delay=NEW_CHAT_PACE), _script(1))
            created = await _first_text_after_enter(page, "hi")
            await _fake_idle(ctx.fake)  # the title, generated after the answer
            # The sidebar lists the new chat (chat.js fetches it a moment after the start):
            # that request must not land in the follow-up's measurement.
            await page.wait_for_url("**/c/*/")  # the page becomes the chat's after its first text
            path = urlsplit(page.url).path
            await page.locator(f'#chat-list a[href="{path}"]').wait_for()
            ctx.fake.enqueue(_script(NEW_CHAT_TOKENS, delay=NEW_CHAT_PACE))
            followed = await _first_text_after_enter(page, "and then?")
            await _fake_idle(ctx.fake)
            if index:
                new_chat.append(created)
                follow_up.append(followed)
        await browser.close()
    ms = 1000
    new_median = statistics.median(new_chat) * ms
    follow_median = statistics.median(follow_up) * ms
    comment(f"Chromium, {NEW_CHAT_BROWSER_SAMPLES} pairs after one to warm up, from Enter")
    report("new_chat_first_token_browser_median", new_median, "ms")
    report("follow_up_first_token_browser_median", follow_median, "ms")
    ratio = new_median / follow_median
    report("new_chat_vs_follow_up_browser", ratio, "ratio", "<= 1.2x a follow-up's", ratio <= 1.2)


async def _direct_cpu_round(target: Any, streams: int, tokens: int, fake: Any) -> tuple[float, int]:
    """CPU of the lean engine alone: 20 streams on a thread of their own (thread CPU time)."""
    result: dict[str, float] = {}

    def run() -> None:
        async def go() -> None:
            from models_registry.llm import llm_close

            start = time.thread_time()
            done = await asyncio.gather(
                *(
                    direct_answer(target, [{"role": "user", "content": "hi"}])
                    for _ in range(streams)
                )
            )
            result["cpu"] = time.thread_time() - start
            result["chunks"] = sum(len(stream.times) for stream in done)
            await llm_close()

        asyncio.run(go())

    for _ in range(streams):
        fake.enqueue(_script(tokens, delay=PACE))
    await asyncio.to_thread(run)
    return result["cpu"], int(result["chunks"])


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


async def _server_round(ctx: Context, streams: int, tokens: int, delay: float) -> Round:
    """`streams` answers started at once; failures are collected, not raised."""
    for _ in range(streams):
        ctx.fake.enqueue(_script(tokens, delay=delay))
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


def _ok(round_: Round) -> Round:
    if round_.failures:
        raise RuntimeError(f"{len(round_.failures)} answers failed: {round_.failures[:3]}")
    return round_


async def phase_cpu(ctx: Context) -> None:
    await wait_idle(ctx.server)
    idle_before = ctx.server.cpu_seconds()
    await asyncio.sleep(2.0)
    idle_ms_per_s = (ctx.server.cpu_seconds() - idle_before) * 1000 / 2.0
    # Fixed cost of an answer (send, stream request, finish) with one token.
    fixed = _ok(await _server_round(ctx, CPU_STREAMS, 1, 0.0))
    fixed_per_answer = fixed.cpu / CPU_STREAMS
    per_chunk: list[float] = []
    direct_per_chunk: list[float] = []
    held_max = 0
    for _ in range(CPU_ROUNDS):
        paced = _ok(await _server_round(ctx, CPU_STREAMS, CPU_TOKENS, PACE))
        per_chunk.append(paced.cpu / paced.chunks)
        held_max = max(held_max, paced.connections.total_max)
        direct_cpu, direct_chunks = await _direct_cpu_round(
            ctx.target, CPU_STREAMS, CPU_TOKENS, ctx.fake
        )
        direct_per_chunk.append(direct_cpu / direct_chunks)
    us = 1e6
    value = statistics.median(per_chunk) * us
    comment(
        f"{CPU_STREAMS} concurrent streams x {CPU_TOKENS} tokens at 50 tokens/s, {CPU_ROUNDS} "
        f"rounds: {', '.join(f'{v * us:.0f}' for v in per_chunk)} us; server idle "
        f"{idle_ms_per_s:.1f} ms CPU/s; fixed cost of one answer (send + stream request + "
        f"finish, 1 token): {fixed_per_answer * 1000:.1f} ms CPU"
    )
    report("cpu_per_chunk", value, "us", "<= 250 us", value <= 250)
    marginal = (statistics.median(per_chunk) * CPU_TOKENS - fixed_per_answer) / (CPU_TOKENS - 1)
    report("cpu_per_chunk_without_fixed_cost", marginal * us, "us")
    direct = statistics.median(direct_per_chunk) * us
    report("cpu_per_chunk_direct_engine", direct, "us", note="lean engine alone, thread CPU time")
    report("cpu_per_chunk_vs_direct", value / direct, "ratio")
    report("cpu_per_answer_fixed", fixed_per_answer * 1000, "ms")
    comment(f"server connections with {CPU_STREAMS} streams open: max {held_max}")


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
            ctx.fake.enqueue(_script(CONCURRENT_TOKENS, delay=PACE))
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
        served = _ok(await _server_round(ctx, streams, CONCURRENT_TOKENS, PACE))
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
    gap = _p95(server_gaps) * 1000
    report("max_gap_p95", gap, "ms", "<= 100 ms", gap <= 100)
    report("max_gap_p95_direct", _p95(direct_gaps) * 1000, "ms")
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
    attempt = await _server_round(ctx, CONCURRENT_STREAMS, CONCURRENT_TOKENS, PACE)
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
        ctx.fake.enqueue(_script(WIRE_TOKENS, initial_delay=0.3))
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
        ctx.fake.enqueue(_script(WIRE_TOKENS))
        direct_size = await _raw_post(ctx.fake.port, "/v1/chat/completions", payload)
        report(
            "wire_bytes_10k_tokens_direct",
            direct_size,
            "bytes",
            note="the provider's own stream for the same answer",
        )
        report("wire_bytes_per_token", size / WIRE_TOKENS, "bytes")
        assert len(split_tokens("".join(_tokens(WIRE_TOKENS)))) == WIRE_TOKENS

        long_writes = sum(after_long.values()) - sum(before.values()) - ctx.send_writes
        # Writes of one paced answer: everything from before the send to the end of the answer
        # (its TokenUsage row counted), minus the send's own writes (counted in-process).
        ctx.fake.enqueue(_script(WRITES_TOKENS, delay=PACE))
        await _answers_settled(ctx.conninfo)
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


async def phase_memory(ctx: Context, rss_litellm: float) -> None:
    async def run(count: int) -> tuple[float, int]:
        chats = ctx.take(count)
        for _ in range(count):
            ctx.fake.enqueue(_script(MEMORY_TOKENS, initial_delay=MEMORY_FIRST_TOKEN_DELAY))
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for item in chats:
            queue.put_nowait(item)
        delivered = 0

        async def worker() -> None:
            nonlocal delivered
            while not queue.empty():
                chat, parent = queue.get_nowait()
                stream = await ctx.client.answer(chat, parent)
                if stream.status != "complete":
                    raise RuntimeError(f"an answer ended {stream.status}")
                delivered += len(stream.times)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(MEMORY_CONCURRENCY)))
        return time.perf_counter() - start, delivered

    warm_seconds, _ = await run(MEMORY_WARMUP)
    rate = MEMORY_WARMUP / warm_seconds
    count = min(MEMORY_MAX, max(500, int(rate * MEMORY_BUDGET_SECONDS) // 500 * 500))
    await wait_idle(ctx.server)
    rss_before = ctx.server.rss_mb()
    seconds, delivered = await run(count)
    await wait_idle(ctx.server)
    rss_after = ctx.server.rss_mb()
    growth = (rss_after - rss_before) / rss_before * 100
    name = "rss_growth" if count >= MEMORY_MAX else f"rss_growth_over_{count}_answers"
    comment(
        f"{MEMORY_TOKENS}-token answers, {MEMORY_CONCURRENCY} at a time: {rate:.0f} answers/s "
        f"in the warm-up of {MEMORY_WARMUP}; then {count} answers in {seconds:.0f} s "
        f"({delivered} chunks); RSS {rss_before:.1f} -> {rss_after:.1f} MB"
        + ("" if count >= MEMORY_MAX else f"; {MEMORY_MAX} would take too long here")
    )
    report(name, growth, "percent", "<= 5%", growth <= 5)
    report("rss_after_answers", rss_after, "MB")
    del rss_litellm


async def bench(server: Server, fake: Any, dbname: str, conninfo: str) -> None:
    await server_wait(server)
    jar = aiohttp.CookieJar(unsafe=True)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as http:
        async with http.get(f"{server.base}/") as response:
            if response.status != 200:
                raise RuntimeError(f"GET / answered {response.status}")
        csrf = next((c.value for c in jar if c.key == "csrftoken"), None)
        if csrf is None:  # not every page sets it: any well-formed secret works
            csrf = secrets.token_hex(16)
            jar.update_cookies({"csrftoken": csrf})
        client = Client(http=http, base=server.base, csrf=csrf)
        # The first send creates the guest's row and a chat (with a title request).
        fake.enqueue(_script(3), _script(3))
        await client.send("", None)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT user_id FROM chats_chat LIMIT 1").fetchone()
            assert row is not None
            user_id = str(row[0])

        # LiteLLM: the server imports it in the background on its first request.
        deadline = time.monotonic() + 90
        while not server.has_litellm() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await wait_idle(server)
        rss_litellm = server.rss_mb()
        loaded = server.has_litellm()
        report(
            "rss_with_litellm",
            rss_litellm,
            "MB",
            "<= 300 MB",
            rss_litellm <= 300 and loaded,
            "" if loaded else "(LiteLLM was NOT found in the server's memory map)",
        )

        with psycopg.connect(conninfo, autocommit=True) as conn:
            started = time.perf_counter()
            long_chat, long_tip = chat_long_create(conn, user_id, LONG_CHAT_MESSAGES)
            short = chats_short_create(conn, user_id, 12_000)
            conn.execute("ANALYZE")
            comment(f"data built in {time.perf_counter() - started:.1f} s")
        target = await asyncio.to_thread(_resolve, user_id)

        # Statements of one send, in this process: a warm-up send, then one of each size.
        # The first answers after its send commits (its rows are not visible before).
        fake.enqueue(_script(1, initial_delay=1.0), _script(1), _script(1), _script(1))
        writes_chat, writes_parent = short.pop()
        writes_of_send = await asyncio.to_thread(send_writes, user_id, writes_chat, writes_parent)
        warm_chat, warm_parent = short.pop()
        await asyncio.to_thread(send_statements, user_id, warm_chat, warm_parent)
        small_chat, small_parent = short.pop()
        small_sql, _ = await asyncio.to_thread(send_statements, user_id, small_chat, small_parent)
        long_sql, long_tip = await asyncio.to_thread(send_statements, user_id, long_chat, long_tip)
        await _answers_settled(conninfo)
        if len(small_sql) != len(long_sql):
            for index, (a, b) in enumerate(zip(small_sql, long_sql, strict=False)):
                if a.split()[:6] != b.split()[:6]:
                    comment(f"statements differ from #{index}: {a[:100]!r} / {b[:100]!r}")
                    break

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
        await wait_idle(server)
        phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("ttft", lambda: phase_ttft(ctx, len(small_sql), len(long_sql))),
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
            await _answers_settled(conninfo)
            await wait_idle(server)
            started = time.perf_counter()
            await phase()
            comment(f"phase {name}: {time.perf_counter() - started:.0f} s")
    from chats.worker import _worker
    from models_registry.llm import llm_close

    await llm_close()
    if _worker.loop is not None:  # the in-process sends generated on this process's loop
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(llm_close(), _worker.loop))


async def _answers_settled(conninfo: str) -> None:
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


def _resolve(user_id: str) -> Any:
    from django.db import connection

    from accounts.models import User
    from models_registry.resolver import resolve

    try:
        return resolve(User.objects.get(id=user_id), MODEL)
    finally:
        connection.close()


def _migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def main() -> int:
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is not set (make bench sets it through scripts/devdb.py)")
        return 1
    dbname = f"vero_bench_{os.getpid()}"
    scratch_url = _url_with_db(base_url, dbname)
    began = time.perf_counter()
    database_create(base_url, dbname)
    server: Server | None = None
    fake: Any = None
    log = Path(f"/tmp/{dbname}-server.log")
    keep_log = False
    try:
        _migrate(scratch_url)
        os.environ["DATABASE_URL"] = scratch_url
        import django

        django.setup()
        # The in-process test client warns that collectstatic never ran: not a bench matter.
        warnings.filterwarnings("ignore", message="No directory at")
        from django.db import connection

        from models_registry.models import Tier
        from tests.conftest import fake_model_register
        from tests.fake_provider import FakeProvider

        fake = FakeProvider().start()
        fake_model_register(fake.base_url)
        Tier.objects.update(bucket_capacity=10_000_000, refill_amount=10_000_000)
        connection.close()
        server = server_start(scratch_url, log)
        asyncio.run(bench(server, fake, dbname, _conninfo(scratch_url)))
        comment(f"total {time.perf_counter() - began:.0f} s")
        return 0
    except BaseException:
        if log.exists():
            lines = [line for line in log.read_text().splitlines() if '" 200 ' not in line]
            tail = "\n".join(lines[-60:])
            sys.stderr.write(f"--- server log, without 200 lines ({log}) ---\n{tail}\n")
            keep_log = True
        raise
    finally:
        if server is not None:
            server.stop()
        if fake is not None:
            fake.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        database_drop(base_url, dbname)
        if not keep_log:
            log.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
