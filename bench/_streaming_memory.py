"""Streaming phase `memory`: the server's memory growth over many short answers.

Why a module of its own: one phase of bench_streaming.py (its docstring names the figures),
each phase in its own module over the shared harness.
"""

from __future__ import annotations

import asyncio
import time

from _harness import comment, report, script
from _streaming_context import Context, wait_idle

MEMORY_WARMUP = 500  # 1,000 in the issue: too slow here (see the output)
MEMORY_MAX = 10_000
MEMORY_BUDGET_SECONDS = 240.0
MEMORY_CONCURRENCY = 40
MEMORY_FIRST_TOKEN_DELAY = 0.3  # the stream attaches before the answer starts
MEMORY_TOKENS = 5


async def phase_memory(ctx: Context, rss_litellm: float) -> None:
    async def run(count: int) -> tuple[float, int]:
        chats = ctx.take(count)
        for _ in range(count):
            ctx.fake.enqueue(script(MEMORY_TOKENS, initial_delay=MEMORY_FIRST_TOKEN_DELAY))
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
