"""A scripted answer with a tool call, played by the live server in place of a generation.

Served with `patches={"chats.worker:generation_start": SCRIPTED}`, a send's answer is not asked
of a provider: its task emits the live events of docs/tools.md ("Live events") by hand, saves
the parts folded so far as a checkpoint would, waits at a gate the test opens (a file named
after the answer in `TOOL_PARTS_GATES`), and ends as a finished answer does (each text part's
HTML, `parts_html` in `done`). The browser sees exactly what it would see of the loop.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from django.utils import timezone

from chats.answer_services import db_off_loop
from chats.live import LiveAnswer, live_answer_add, live_answer_remove
from chats.markdown import markdown_render
from chats.models import Message
from chats.worker import GenerationPlan, _worker

SCRIPTED = "tests.browser.tool_parts_support:scripted_generation_start"
GATES_ENV = "TOOL_PARTS_GATES"

# Floats written as `21.0` come back from an event as `21`: both sides must print them alike.
WEATHER = {"city": "Paris", "temperature": 21.0, "sky": "sunny", "wind_kmh": 7.5, "alerts": []}
ANSWER_END = ["It is ", "21 °C ", "and **sunny** ", "in Paris."]

# Before the gate: reasoning, text, a call streamed in pieces, and its start.
BEFORE_GATE: list[tuple[str, Any]] = [
    ("reasoning", "The user wants today's weather. "),
    ("reasoning", "I should call get_weather."),
    ("text", "Let me look "),
    ("text", "that up."),
    ("tool", {"index": 0, "id": "call_0", "name": "get_weather", "arguments": '{"city": '}),
    ("tool", {"index": 0, "id": None, "name": None, "arguments": '"Paris", "days": 1}'}),
    ("tool-call", {"id": "call_0", "status": "running"}),
]
# After it: the call ends, its result, the second step's text.
AFTER_GATE: list[tuple[str, Any]] = [
    ("tool-call", {"id": "call_0", "status": "complete"}),
    ("tool-result", {"step": 1, "id": "call_0", "name": "get_weather", "result": WEATHER,
                     "is_error": False}),
    ("step", {"step": 2}),
    # The loop opens a step whose provider returned reasoning state without text with an empty
    # reasoning part (docs/tools.md): hidden on both sides.
    ("reasoning", ""),
    *[("text", piece) for piece in ANSWER_END],
]  # fmt: skip


def gate_path(gates: str | Path, message_id: uuid.UUID | str) -> Path:
    return Path(gates) / f"{message_id}.open"


def parts_fold(events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The parts the events make, by the contract's rules (the server's own fold is the loop's;
    this one is the test's, written from docs/tools.md alone)."""
    parts: list[dict[str, Any]] = []
    step = 1
    for kind, data in events:
        last = parts[-1] if parts else None
        if kind == "step":
            step = data["step"]
        elif kind in ("text", "reasoning"):
            if last is not None and last["type"] == kind:
                last["text"] += data
            else:
                parts.append({"type": kind, "text": data})
        elif kind == "tool":
            call = next(
                (p for p in parts if p["type"] == "tool-call" and p["step"] == step
                 and p["index"] == data["index"]),
                None,
            )  # fmt: skip
            if call is None:
                call = {"type": "tool-call", "step": step, "index": data["index"], "id": "",
                        "name": "", "arguments": "", "status": "pending"}  # fmt: skip
                parts.append(call)
            call["id"] = data["id"] or call["id"]
            call["name"] = data["name"] or call["name"]
            call["arguments"] += data["arguments"] or ""
        elif kind == "tool-call":
            for part in reversed(parts):
                if part["type"] == "tool-call" and part["id"] == data["id"]:
                    part["status"] = data["status"]
                    break
        elif kind == "tool-result":
            parts.append({"type": "tool-result", **data})
        elif kind == "notice":
            parts.append({"type": "notice", **data})
    return parts


def _save(message_id: uuid.UUID, **fields: Any) -> None:
    Message.objects.filter(id=message_id, status=Message.Status.STREAMING).update(**fields)


async def _play(live: LiveAnswer, plan: GenerationPlan) -> None:
    live.task = asyncio.current_task()
    played: list[tuple[str, Any]] = []

    async def emit(kind: str, data: Any) -> None:
        live.emit(kind, data)
        played.append((kind, data))
        await asyncio.sleep(0.05)

    for kind, data in BEFORE_GATE:
        await emit(kind, data)
    # A checkpoint: a page loaded from now on renders these parts and follows from here.
    await db_off_loop(_save)(
        plan.message_id, parts=parts_fold(played), stream_seq=live.seq, heartbeat_at=timezone.now()
    )
    gate = gate_path(os.environ[GATES_ENV], plan.message_id)
    while not gate.exists():
        await asyncio.sleep(0.05)
    for kind, data in AFTER_GATE:
        await emit(kind, data)
    parts = parts_fold(played)
    texts = [part for part in parts if part["type"] == "text"]
    for part in texts:
        part["html"] = markdown_render(part["text"])
    html = markdown_render("".join(part["text"] for part in texts))
    await db_off_loop(_save)(
        plan.message_id, parts=parts, stream_seq=live.seq, html=html,
        status=Message.Status.COMPLETE, heartbeat_at=None,
    )  # fmt: skip
    live.emit(
        "done",
        {"status": "complete", "error": "", "html": html,
         "parts_html": [part["html"] for part in texts]},
    )  # fmt: skip
    live_answer_remove(plan.message_id)


def scripted_generation_start(plan: GenerationPlan) -> LiveAnswer:
    """`chats.worker.generation_start`, playing the script instead of asking a provider."""
    live = LiveAnswer(message_id=plan.message_id, chat_id=plan.chat_id, user_id=plan.user_id)
    live_answer_add(live)
    _worker.submit(_play(live, plan))
    return live
