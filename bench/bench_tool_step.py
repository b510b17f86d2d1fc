"""Server CPU per tool step of an answer's loop, excluding the tool itself.

`tool_step_cpu_ms` (target <= 5 ms): what one more step costs the server, i.e. the loop's work
around a tool call (the `tool` / `tool-call` / `tool-result` / `step` events and their fold,
the call's validation and dispatch, the replay of the steps so far, one more TokenUsage row)
plus the step's model call as the server sees it (the request, reading its stream).

Method, in one process against the fake provider (a thread of this process):
- the generation runs as in a server (`turn_services.answer_start` on the generation loop,
  the database behind), one answer at a time, each waited for on the loop itself (no polling);
- round A: ANSWERS answers of STEPS tool steps and a final text step (the model calls a
  trivial async tool at each step); round B: the same answers with the final text step only,
  the same tools offered (so per-answer costs, the offer included, cancel out);
- CPU is this process's `time.process_time()` over the round, minus the fake provider
  thread's own CPU (`pthread_getcpuclockid`: it stands in for a remote provider, not the
  server), minus the tool's own CPU (thread CPU time measured inside it);
- tool_step_cpu_ms = (A - B - tool) / (ANSWERS * STEPS); A and B alternate over ROUNDS rounds
  (load from other processes on this shared machine hits both alike) and the median is kept.
Checkpoints run at their default interval in both rounds; the answers are short, so few run.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from _harness import Setup, bench_main, comment, report

ANSWERS = 30
STEPS = 4
ROUNDS = 3
FINAL = "The sum is ready. " * 5


def _thread_cpu(thread: Any) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def body(setup: Setup) -> None:
    from accounts.models import User
    from chats.live import LiveAnswer
    from chats.models import Chat
    from chats.services import message_send
    from chats.turn_services import answer_start
    from chats.worker import _worker, generation_start
    from models_registry.cache import registry_cache_clear
    from models_registry.models import Model
    from models_registry.resolver import resolve
    from tests.fake_provider import Script, ToolCall
    from tests.helpers import FAKE_MODEL_ID
    from tools.registry import StaticSource, Tool, tool_source_register

    fake = setup.fake
    tool_cpu = [0.0]

    async def ping(context: Any, arguments: dict[str, Any]) -> Any:
        began = time.thread_time()
        result = {"pong": arguments.get("n", 0)}
        tool_cpu[0] += time.thread_time() - began
        return result

    tool_source_register(
        StaticSource(
            name="bench",
            static_tools=(
                Tool(
                    name="ping",
                    description="Answer pong.",
                    group="weather",
                    function=ping,
                    parameters={"type": "object", "properties": {"n": {"type": "integer"}}},
                ),
            ),
        )
    )
    Model.objects.filter(id=FAKE_MODEL_ID).update(supports_tools=True)
    registry_cache_clear()
    user = User.objects.create_user("bench-tools@example.com", "x")
    target = resolve(user, FAKE_MODEL_ID)

    # Which answers the generation started, to wait for each on the loop itself.
    started: list[LiveAnswer] = []
    import chats.turn_services as turn_services

    def recording_start(plan: Any) -> LiveAnswer:
        live = generation_start(plan)
        started.append(live)
        return live

    turn_services.generation_start = recording_start

    async def finished(live: LiveAnswer) -> None:
        while live.task is None:
            await asyncio.sleep(0)
        await asyncio.wait({live.task})

    def one_round(steps: int) -> float:
        turns = [
            message_send(user_id=user.id, chat=None, text="Add up", model_id=FAKE_MODEL_ID)
            for _ in range(ANSWERS)
        ]
        chats = {turn.chat.id: turn.chat for turn in turns}
        tool_cpu[0] = 0.0
        fake_before = _thread_cpu(fake._thread)
        cpu_before = time.process_time()
        for turn in turns:
            calls = [Script(tool_calls=[ToolCall(name="ping", arguments={"n": n})])
                     for n in range(steps)]  # fmt: skip
            fake.enqueue(*calls, Script(text=FINAL))
            answer_start(user=user, chat=chats[turn.chat.id], answer=turn.answer, target=target)
            loop = _worker.loop
            assert loop is not None
            asyncio.run_coroutine_threadsafe(finished(started[-1]), loop).result(60)
        cpu = time.process_time() - cpu_before
        fake_cpu = _thread_cpu(fake._thread) - fake_before
        Chat.objects.filter(id__in=list(chats)).delete()
        return cpu - fake_cpu - tool_cpu[0]

    one_round(STEPS)  # warm up: imports, connections, the provider session
    with_tools: list[float] = []
    without: list[float] = []
    for _ in range(ROUNDS):
        with_tools.append(one_round(STEPS))
        without.append(one_round(0))
    per_step = [(a - b) / (ANSWERS * STEPS) for a, b in zip(with_tools, without, strict=True)]
    ms = 1000
    comment(
        f"{ANSWERS} answers x {STEPS} tool steps + a final step, against the same answers with "
        f"the final step only, {ROUNDS} rounds: A {', '.join(f'{v:.2f}' for v in with_tools)} s, "
        f"B {', '.join(f'{v:.2f}' for v in without)} s CPU (fake provider and tool excluded)"
    )
    comment(f"a plain answer (B) costs {statistics.median(without) / ANSWERS * ms:.1f} ms CPU")
    value = statistics.median(per_step) * ms
    report("tool_step_cpu_ms", value, "ms", "<= 5 ms", value <= 5)


if __name__ == "__main__":
    sys.exit(bench_main(body, prefix="vero_bench_tools", fake_bucket=100_000))
