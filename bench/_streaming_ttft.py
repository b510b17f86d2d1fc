"""Streaming phase `ttft`: the time to the first token the server adds, in a 1-message chat
and in a 10,000-message chat, and the statements of one send.

Why a module of its own: one phase of bench_streaming.py (its docstring names the figures),
each phase in its own module over the shared harness.
"""

from __future__ import annotations

import statistics

from _client import direct_answer
from _harness import comment, p95, report, script
from _streaming_context import LONG_CHAT_MESSAGES, PACE, Context
from _streaming_data import long_context

TTFT_SAMPLES = 30
TTFT_TOKENS = 5


async def phase_ttft(ctx: Context, statements_small: int, statements_long: int) -> None:
    context_long = long_context(LONG_CHAT_MESSAGES)
    short = [{"role": "user", "content": "hello"}, {"role": "user", "content": "hi"}]
    added_small: list[float] = []
    added_long: list[float] = []
    raw: dict[str, list[float]] = {
        name: [] for name in ("direct", "server", "direct_long", "server_long", "post", "post_long")
    }
    for chat_id, message_id in ctx.take(TTFT_SAMPLES):
        ctx.fake.enqueue(script(TTFT_TOKENS, delay=PACE))
        direct = await direct_answer(ctx.target, short)
        ctx.fake.enqueue(script(TTFT_TOKENS, delay=PACE))
        served = await ctx.client.answer(chat_id, message_id)
        ctx.fake.enqueue(script(TTFT_TOKENS, delay=PACE))
        direct_long = await direct_answer(ctx.target, context_long)
        ctx.fake.enqueue(script(TTFT_TOKENS, delay=PACE))
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
    p95_small = p95(added_small) * ms
    report("ttft_added_p95", p95_small, "ms", "<= 30 ms", p95_small <= 30)
    median_long = statistics.median(added_long) * ms
    report("ttft_added_median_10k", median_long, "ms")
    report("ttft_added_p95_10k", p95(added_long) * ms, "ms")
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
