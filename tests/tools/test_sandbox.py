"""The sandbox is a boundary: every way out that alice's model might write is contained.

Each escape is tried for real in a worker process, and the pool is shown to recover after it
(the next run gives 2 for `1+1`). `api.fetch` is served by the parent through the URL guard;
its successes go to a local aiohttp server that the test's settings allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from tools.sandbox import fetch as sandbox_fetch
from tools.sandbox import pool as sandbox_pool_module
from tools.sandbox.pool import SandboxLimits, SandboxPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMITS = SandboxLimits(
    memory_mb=64,
    time_seconds=1.0,
    output_chars=2000,
    fetch_bytes=10_000,
    fetch_timeout_seconds=1.0,
    fetches=3,
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pool() -> AsyncIterator[SandboxPool]:
    pool = SandboxPool(size=2)
    pool.warm(LIMITS)
    yield pool
    await pool.close()


async def run(pool: SandboxPool, code: str, **limits: Any) -> dict[str, Any]:
    return await pool.run(code, limits=dataclasses.replace(LIMITS, **limits))


async def assert_recovers(pool: SandboxPool) -> None:
    outcome = await run(pool, "1+1")
    assert outcome["ok"] and outcome["result"] == 2


def worker_pids(pool: SandboxPool) -> list[int]:
    return [worker.process.pid for worker in pool._idle if worker.alive]


# -- results and errors ------------------------------------------------------------------------


async def test_the_last_expression_is_the_result_and_the_console_is_captured(
    pool: SandboxPool,
) -> None:
    outcome = await run(pool, 'console.log("thinking", {step: 1}); console.warn("hm"); 6 * 7')
    assert outcome["ok"] is True
    assert outcome["result"] == 42
    assert outcome["console"] == 'thinking {"step":1}\n[warn] hm'
    assert "truncated" not in outcome


async def test_code_with_top_level_await_and_return_runs_as_an_async_body(
    pool: SandboxPool,
) -> None:
    outcome = await run(pool, "const x = await Promise.resolve(20); return {x, y: x + 1}")
    assert outcome == {**outcome, "ok": True, "result": {"x": 20, "y": 21}}


async def test_a_syntax_error_comes_back_as_a_structured_result(pool: SandboxPool) -> None:
    outcome = await run(pool, "let = = 1;")
    assert outcome["ok"] is False
    assert outcome["error"]["type"] == "SyntaxError"
    await assert_recovers(pool)


async def test_a_thrown_error_comes_back_with_its_type_message_and_the_console_so_far(
    pool: SandboxPool,
) -> None:
    outcome = await run(pool, 'console.log("before"); throw new TypeError("alice\'s bug")')
    assert outcome["ok"] is False
    assert outcome["error"]["type"] == "TypeError"
    assert outcome["error"]["message"] == "alice's bug"
    assert outcome["console"] == "before"


async def test_a_rejected_promise_is_an_error_result(pool: SandboxPool) -> None:
    outcome = await run(pool, "Promise.reject(new RangeError('late'))")
    assert outcome["error"]["type"] == "RangeError"
    assert outcome["error"]["message"] == "late"


async def test_a_promise_that_can_never_settle_is_reported_not_waited_for(
    pool: SandboxPool,
) -> None:
    started = time.monotonic()
    outcome = await run(pool, "new Promise(() => {})")
    assert outcome["error"]["type"] == "unsettled"
    assert time.monotonic() - started < 0.5


async def test_nothing_is_kept_between_runs(pool: SandboxPool) -> None:
    await run(pool, "globalThis.secret = 'alice'; Object.prototype.polluted = 1")
    outcome = await run(pool, "[typeof secret, typeof ({}).polluted]")
    assert outcome["result"] == ["undefined", "undefined"]


# -- filesystem and processes --------------------------------------------------------------------


async def test_there_is_no_require_std_os_process_or_open(pool: SandboxPool) -> None:
    outcome = await run(
        pool,
        "[typeof require, typeof std, typeof os, typeof process, typeof open, typeof module,"
        " typeof scriptArgs, typeof print, typeof Deno, typeof Bun]",
    )
    assert outcome["result"] == ["undefined"] * 10


@pytest.mark.parametrize("name", ["os", "std", "qjs:os", "qjs:std", "fs", "child_process"])
async def test_no_module_can_be_imported(pool: SandboxPool, name: str) -> None:
    outcome = await run(pool, f"await import({name!r})")
    assert outcome["ok"] is False
    assert "could not load module" in outcome["error"]["message"]


async def test_a_static_import_is_a_syntax_error(pool: SandboxPool) -> None:
    outcome = await run(pool, 'import * as os from "os"; os.exec(["/bin/sh"])')
    assert outcome["error"]["type"] == "SyntaxError"


async def test_the_worker_holds_no_descriptor_but_its_pipes_and_may_open_none(
    pool: SandboxPool,
) -> None:
    await assert_recovers(pool)
    pid = worker_pids(pool)[0]
    assert sorted(os.listdir(f"/proc/{pid}/fd")) == ["0", "1", "2"]
    limits = Path(f"/proc/{pid}/limits").read_text()
    open_files = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    file_size = next(line for line in limits.splitlines() if line.startswith("Max file size"))
    processes = next(line for line in limits.splitlines() if line.startswith("Max processes"))
    address = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert open_files.split()[3:5] == ["3", "3"]
    assert file_size.split()[3:5] == ["0", "0"]
    assert processes.split()[2:4] == ["0", "0"]
    assert "unlimited" not in address


async def test_the_worker_reports_every_fence_it_put_up(pool: SandboxPool) -> None:
    await assert_recovers(pool)
    protections = pool._idle[0].protections
    assert {"quickjs-no-std-os", "rlimits"} <= set(protections)
    if os.path.exists("/lib/x86_64-linux-gnu/libseccomp.so.2"):
        assert "seccomp" in protections
    if os.geteuid() == 0:
        assert "user-nobody" in protections
        status = Path(f"/proc/{worker_pids(pool)[0]}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["65534"] * 4


# -- prototype tricks ----------------------------------------------------------------------------


async def test_the_function_constructor_reaches_only_the_sandboxs_own_global(
    pool: SandboxPool,
) -> None:
    outcome = await run(
        pool,
        """
        const viaConstructor = constructor.constructor("return this")();
        const viaFunction = Function("return this")();
        const viaProto = ({}).__proto__.constructor.constructor("return globalThis")();
        const host = Object.getOwnPropertyNames(viaConstructor)
          .filter((name) => /vero_(log|fetch|limits)|require|process|std|^os$/.test(name));
        [viaConstructor === globalThis, viaFunction === globalThis, viaProto === globalThis,
         host, typeof viaConstructor.api.fetch]
        """,
    )
    assert outcome["result"] == [True, True, True, [], "function"]


async def test_api_cannot_be_replaced_to_reach_the_host_bridge(pool: SandboxPool) -> None:
    outcome = await run(
        pool,
        "'use strict'; try { api.fetch = () => 1; 'replaced' } catch (e) { e.name }",
    )
    assert outcome["result"] == "TypeError"


# -- memory bombs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bomb",
    [
        "new Uint8Array(1024 * 1024 * 1024)",
        "new Array(256 * 1024 * 1024).fill(1.5)",
        "let s = 'x'; while (true) s = s + s",
        "const keep = []; while (true) keep.push(new Float64Array(1024 * 1024))",
        "'y'.repeat(1024 * 1024 * 1024)",
    ],
)
async def test_a_memory_bomb_is_refused_and_the_pool_recovers(pool: SandboxPool, bomb: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = await run(pool, bomb, time_seconds=5.0)
    assert outcome["ok"] is False
    assert outcome["error"]["type"] in {"memory_limit", "RangeError", "InternalError"}
    # ru_maxrss is in KB: the server process never held the bomb.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 10 * 1024
    await assert_recovers(pool)


async def test_a_worker_that_ran_out_of_memory_is_replaced(pool: SandboxPool) -> None:
    await assert_recovers(pool)
    pids_before = set(worker_pids(pool))
    await run(pool, "let s = 'x'; while (true) s = s + s", time_seconds=5.0)
    await assert_recovers(pool)
    await asyncio.sleep(0.2)
    for pid in pids_before - set(worker_pids(pool)):
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except FileNotFoundError:
        return "gone"


# -- time bombs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bomb",
    [
        "while (true) {}",
        "new Promise(() => { while (true) {} })",
        "Promise.resolve().then(() => { for (;;) {} })",
        "/(a+)+$/.test('a'.repeat(40) + '!')",
        "const f = () => { try { f() } finally { f() } }; f()",
    ],
)
async def test_a_time_bomb_is_stopped_at_the_limit_and_the_pool_recovers(
    pool: SandboxPool, bomb: str
) -> None:
    started = time.monotonic()
    outcome = await run(pool, bomb, time_seconds=0.5)
    elapsed = time.monotonic() - started
    assert outcome["ok"] is False
    assert outcome["error"]["type"] in {"time_limit", "RangeError", "InternalError"}
    assert elapsed < 1.5
    await assert_recovers(pool)


async def test_a_stopped_worker_is_killed_and_reaped(pool: SandboxPool) -> None:
    await assert_recovers(pool)
    await assert_recovers(pool)
    pids = set(worker_pids(pool))
    await asyncio.gather(
        run(pool, "while (true) {}", time_seconds=0.3),
        run(pool, "while (true) {}", time_seconds=0.3),
    )
    await asyncio.sleep(0.3)
    assert all(_state(pid) == "gone" for pid in pids)
    await assert_recovers(pool)


async def test_the_console_printed_before_a_time_bomb_is_kept(pool: SandboxPool) -> None:
    outcome = await run(pool, "console.log('step 1'); while (true) {}", time_seconds=0.3)
    assert outcome["error"]["type"] == "time_limit"
    assert outcome["console"] == "step 1"


async def test_a_run_cancelled_midway_kills_its_worker(pool: SandboxPool) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(run(pool, "while (true) {}", time_seconds=10.0), timeout=0.3)
    await assert_recovers(pool)


async def test_the_event_loop_keeps_ticking_while_code_loops(pool: SandboxPool) -> None:
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        for _ in range(40):
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    await asyncio.gather(
        tick(),
        run(pool, "while (true) {}", time_seconds=0.8),
        run(pool, "while (true) {}", time_seconds=0.8),
    )
    # Code run on the loop would stop it for the whole 0.8 s; a busy machine may stall it some.
    assert max(gaps) < 0.3


async def test_at_most_size_runs_go_at_once(pool: SandboxPool) -> None:
    busy = "const t = Date.now(); while (Date.now() - t < 300) {}; 1"
    await asyncio.gather(assert_recovers(pool), assert_recovers(pool))
    seen: list[int] = []

    async def watch() -> None:
        for _ in range(60):
            seen.append(pool._busy)
            await asyncio.sleep(0.01)

    started = time.monotonic()
    outcomes = await asyncio.gather(run(pool, busy), run(pool, busy), run(pool, busy), watch())
    assert all(outcome["result"] == 1 for outcome in outcomes[:3])
    assert max(seen) == 2
    assert time.monotonic() - started >= 0.6


# -- output bombs --------------------------------------------------------------------------------


async def test_console_output_is_cut_at_the_limit(pool: SandboxPool) -> None:
    outcome = await run(pool, "for (let i = 0; i < 100000; i++) console.log('z'.repeat(100)); 1")
    assert outcome["truncated"] is True
    assert len(outcome["console"]) <= LIMITS.output_chars + 100  # the lines' separators
    assert outcome["result"] == ""  # no room was left for it


async def test_a_huge_result_is_cut_at_the_limit(pool: SandboxPool) -> None:
    outcome = await run(pool, "'w'.repeat(5_000_000)", time_seconds=5.0)
    assert outcome["truncated"] is True
    assert len(outcome["result"]) == LIMITS.output_chars


# -- api.fetch -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def site() -> AsyncIterator[dict[str, Any]]:
    """A local site (127.0.0.1) and an internal one (127.0.0.2) that must never be reached."""
    internal_hits: list[str] = []

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.query.get("name", "world")})

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "body": await request.text(),
                "persona": request.headers.get("X-Persona"),
            }
        )

    async def large(request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 50_000)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")

    async def secret(request: web.Request) -> web.Response:
        internal_hits.append(request.path)
        return web.Response(text="internal data")

    internal_app = web.Application()
    internal_app.router.add_get("/secret", secret)
    internal = TestServer(internal_app, host="127.0.0.2")
    await internal.start_server()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(internal.make_url("/secret")))

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/large", large)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield {
        "base": str(server.make_url("")).rstrip("/"),
        "port": server.port,
        "internal": str(internal.make_url("/secret")),
        "internal_hits": internal_hits,
    }
    await server.close()
    await internal.close()


@pytest.fixture
def local_site_allowed(settings: Any) -> None:
    settings.BYOK_ALLOW_PRIVATE_NETWORKS = False
    settings.BYOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


async def test_api_fetch_gets_json_from_an_allowed_server(
    pool: SandboxPool, site: dict[str, Any], local_site_allowed: None
) -> None:
    outcome = await run(
        pool,
        f"""
        const response = await api.fetch("{site["base"]}/hello?name=alice");
        return [response.ok, response.status, response.headers["content-type"],
                await response.json()];
        """,
    )
    assert outcome["result"] == [True, 200, "application/json; charset=utf-8", {"hello": "alice"}]


async def test_api_fetch_sends_the_method_headers_and_body(
    pool: SandboxPool, site: dict[str, Any], local_site_allowed: None
) -> None:
    outcome = await run(
        pool,
        f"""
        const response = await api.fetch("{site["base"]}/echo", {{
          method: "post", headers: {{"X-Persona": "bob"}}, body: JSON.stringify({{a: 1}})}});
        return await response.json();
        """,
    )
    assert outcome["result"] == {"method": "POST", "body": '{"a":1}', "persona": "bob"}


async def test_a_response_larger_than_the_limit_is_refused(
    pool: SandboxPool, site: dict[str, Any], local_site_allowed: None
) -> None:
    outcome = await run(pool, f"await api.fetch('{site['base']}/large')")
    assert outcome["ok"] is False
    assert "larger than 10000 bytes" in outcome["error"]["message"]


async def test_a_fetch_that_takes_too_long_is_given_up(
    pool: SandboxPool, site: dict[str, Any], local_site_allowed: None
) -> None:
    started = time.monotonic()
    outcome = await run(pool, f"await api.fetch('{site['base']}/slow')", fetch_timeout_seconds=0.3)
    assert "did not answer within 0.3 seconds" in outcome["error"]["message"]
    assert time.monotonic() - started < 1.5


async def test_time_spent_fetching_does_not_count_against_the_runs_time(
    pool: SandboxPool, site: dict[str, Any], local_site_allowed: None
) -> None:
    code = f"""
        for (let i = 0; i < 3; i++) {{
          try {{ await api.fetch('{site["base"]}/slow') }} catch (e) {{}}
        }}
        'done'
    """
    outcome = await run(pool, code, time_seconds=0.5, fetch_timeout_seconds=0.3)
    assert outcome["result"] == "done"


async def test_fetches_past_the_count_are_refused(
    pool: SandboxPool, site: dict[str, Any], local_site_allowed: None
) -> None:
    outcome = await run(
        pool,
        f"""
        const answers = [];
        for (let i = 0; i < 4; i++) {{
          try {{ answers.push((await api.fetch('{site["base"]}/hello')).status) }}
          catch (e) {{ answers.push(e.message) }}
        }}
        answers
        """,
    )
    assert outcome["result"] == [200, 200, 200, "api.fetch: at most 3 fetches per run"]


async def test_a_redirect_to_an_internal_address_is_not_followed(
    pool: SandboxPool, site: dict[str, Any], local_site_allowed: None
) -> None:
    outcome = await run(
        pool,
        f"""
        const response = await api.fetch('{site["base"]}/redirect');
        let second;
        try {{ await api.fetch(response.headers.location) }} catch (e) {{ second = e.message }}
        [response.status, response.headers.location, second]
        """,
    )
    status, location, second = outcome["result"]
    assert (status, location) == (302, site["internal"])
    assert "127.0.0.2 is a loopback address" in second
    assert site["internal_hits"] == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hello", "a loopback address"),
        ("http://10.0.0.1/", "a private network address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[::1]:{port}/hello", "a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/hello", "a loopback address"),
        ("http://localhost:{port}/hello", "a loopback address"),
        ("file:///etc/passwd", "Only http:// and https://"),
    ],
)
async def test_api_fetch_refuses_private_addresses(
    pool: SandboxPool, site: dict[str, Any], settings: Any, url: str, reason: str
) -> None:
    settings.BYOK_ALLOW_PRIVATE_NETWORKS = False
    settings.BYOK_ALLOWED_NETWORKS = []
    outcome = await run(pool, f"await api.fetch({url.format(port=site['port'])!r})")
    assert outcome["ok"] is False
    assert reason in outcome["error"]["message"]


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time_too(
    pool: SandboxPool, site: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BYOK_ALLOW_PRIVATE_NETWORKS = False
    settings.BYOK_ALLOWED_NETWORKS = []
    # As if the name resolved to a public address when it was checked (DNS rebinding).
    monkeypatch.setattr(sandbox_fetch, "url_guard_check", lambda url: None)
    outcome = await run(pool, f"await api.fetch('http://localhost:{site['port']}/hello')")
    assert outcome["ok"] is False
    assert "a loopback address" in outcome["error"]["message"]


async def test_the_worker_itself_has_no_network(pool: SandboxPool) -> None:
    await assert_recovers(pool)
    pid = worker_pids(pool)[0]
    if "network-namespace" not in pool._idle[0].protections:
        pytest.skip("this machine lets no process make a network namespace")
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")


async def test_the_code_cannot_forge_its_own_report(pool: SandboxPool) -> None:
    outcome = await run(
        pool,
        'globalThis.__vero_report = () => \'{"ok": true, "value": "forged"}\';'
        " __vero_settled = () => true; throw new Error('real')",
    )
    assert outcome["ok"] is False
    assert outcome["error"]["message"] == "real"


async def test_the_last_line_is_the_result_of_code_that_awaits(pool: SandboxPool) -> None:
    outcome = await run(pool, "const a = await Promise.resolve(2)\nconst b = 3;\na * b;")
    assert outcome["result"] == 6


# -- the process boundary ------------------------------------------------------------------------

# What a QuickJS bug would give an attacker: Python in the worker, after its fences are up.
ESCAPES_AFTER_THE_FENCE = """
import json, os, socket, sys
sys.path.insert(0, sys.argv[1])
import worker
protections = worker.fence(memory_mb=64, cpu_seconds=30)
attempts = {}
def attempt(name, action):
    try:
        action()
        attempts[name] = "allowed"
    except (OSError, MemoryError) as error:
        attempts[name] = type(error).__name__
attempt("open a file", lambda: open("/etc/hostname", "rb"))
attempt("write a file", lambda: open("/tmp/sandbox-escape", "wb"))
attempt("open a socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt("fork", lambda: os.fork())
attempt("exec", lambda: os.execv("/bin/sh", ["/bin/sh", "-c", "true"]))
attempt("allocate 1 GB", lambda: bytearray(1024 * 1024 * 1024))
print(json.dumps({"protections": protections, "attempts": attempts}))
"""


async def test_even_python_in_the_worker_cannot_open_files_sockets_or_processes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-c",
        ESCAPES_AFTER_THE_FENCE,
        str(Path(sandbox_pool_module.WORKER_PATH).parent),
        stdout=asyncio.subprocess.PIPE,
        env={},
    )
    stdout, _ = await process.communicate()
    found = json.loads(stdout)
    assert found["attempts"]["allocate 1 GB"] == "MemoryError"
    refused = {name for name, result in found["attempts"].items() if result != "allowed"}
    assert refused == set(found["attempts"]), found
    assert not Path("/tmp/sandbox-escape").exists()


async def test_a_worker_that_died_while_idle_is_replaced_without_failing_the_run(
    pool: SandboxPool,
) -> None:
    await asyncio.gather(assert_recovers(pool), assert_recovers(pool))
    for worker in pool._idle:
        os.kill(worker.process.pid, 9)
    # Blocking, so that the loop has not yet noticed the deaths when the next run starts.
    time.sleep(0.1)
    assert all(worker.alive for worker in pool._idle)
    await assert_recovers(pool)


async def test_a_worker_killed_mid_run_is_a_crashed_result_with_its_console(
    pool: SandboxPool,
) -> None:
    await asyncio.gather(assert_recovers(pool), assert_recovers(pool))
    pids = worker_pids(pool)

    async def kill_soon() -> None:
        await asyncio.sleep(0.3)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    outcome, _ = await asyncio.gather(
        run(pool, "console.log('started'); while (true) {}", time_seconds=5.0), kill_soon()
    )
    assert outcome["error"]["type"] == "crashed"
    assert outcome["console"] == "started"
    await assert_recovers(pool)


async def test_timers_and_the_newer_builtins_models_write_are_there(pool: SandboxPool) -> None:
    outcome = await run(
        pool,
        """
        const order = [];
        setTimeout(() => order.push("late"), 30);
        const cancelled = setTimeout(() => order.push("never"), 10);
        clearTimeout(cancelled);
        setTimeout((word) => order.push(word), 0, "soon");
        queueMicrotask(() => order.push("micro"));
        await new Promise((resolve) => setTimeout(resolve, 50));
        return [order, [1, 2, 3].at(-1), "abc".at(0), Object.hasOwn({a: 1}, "a"),
                [1, 2, 3, 4].findLast((n) => n % 2), [1, 2].findLastIndex((n) => n > 5)];
        """,
    )
    assert outcome["result"] == [["micro", "soon", "late"], 3, "a", True, 3, -1]


async def test_an_error_thrown_in_a_timer_fails_the_run(pool: SandboxPool) -> None:
    outcome = await run(pool, "setTimeout(() => { throw new Error('in a timer') }, 5); 1")
    assert outcome["result"] == 1  # the code's value settled before the timer ran
    outcome = await run(
        pool, "await new Promise(() => setTimeout(() => { throw new Error('in a timer') }, 5))"
    )
    assert outcome["error"]["message"] == "in a timer"


async def test_a_timer_waiting_past_the_limit_is_stopped(pool: SandboxPool) -> None:
    outcome = await run(pool, "await new Promise((r) => setTimeout(r, 60000))", time_seconds=0.3)
    assert outcome["error"]["type"] == "time_limit"


@pytest.mark.parametrize(
    ("code", "result"),
    [
        ("'42'", "42"),
        ("'{\"a\": 1}'", '{"a": 1}'),
        (
            "({n: 10n, f: function named() {}, s: Symbol('x')})",
            {"n": "10n", "f": "[Function named]", "s": "Symbol(x)"},
        ),
        ("const o = {name: 'alice'}; o.self = o; o", {"name": "alice", "self": "[Circular]"}),
        ("const shared = {x: 1}; [shared, shared]", [{"x": 1}, {"x": 1}]),
        ("undefined", None),
        ("new Error('as a value')", "Error: as a value"),
        ("new Map([[1, 2]])", {}),
    ],
)
async def test_results_come_back_as_json_with_their_type_kept(
    pool: SandboxPool, code: str, result: Any
) -> None:
    outcome = await run(pool, code)
    assert outcome["ok"] is True
    assert outcome["result"] == result


async def test_code_that_replaces_json_still_gets_its_report(pool: SandboxPool) -> None:
    outcome = await run(
        pool, "JSON.stringify = () => 'spoiled'; JSON.parse = () => ({ok: true}); [1, 2]"
    )
    assert outcome["result"] == [1, 2]
    await assert_recovers(pool)
