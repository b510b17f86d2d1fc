"""Streaming phase `cpu`: the server's CPU per chunk delivered, against the lean engine's.

Why a module of its own: one phase of bench_streaming.py (its docstring names the figures),
each phase in its own module over the shared harness.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from _client import direct_answer
from _harness import comment, report, script
from _streaming_context import PACE, Context, round_ok, server_round, wait_idle

CPU_STREAMS = 20
CPU_TOKENS = 200
CPU_ROUNDS = 3


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
        fake.enqueue(script(tokens, delay=PACE))
    await asyncio.to_thread(run)
    return result["cpu"], int(result["chunks"])


async def phase_cpu(ctx: Context) -> None:
    await wait_idle(ctx.server)
    idle_before = ctx.server.cpu_seconds()
    await asyncio.sleep(2.0)
    idle_ms_per_s = (ctx.server.cpu_seconds() - idle_before) * 1000 / 2.0
    # Fixed cost of an answer (send, stream request, finish) with one token.
    fixed = round_ok(await server_round(ctx, CPU_STREAMS, 1, 0.0))
    fixed_per_answer = fixed.cpu / CPU_STREAMS
    per_chunk: list[float] = []
    direct_per_chunk: list[float] = []
    held_max = 0
    for _ in range(CPU_ROUNDS):
        paced = round_ok(await server_round(ctx, CPU_STREAMS, CPU_TOKENS, PACE))
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
