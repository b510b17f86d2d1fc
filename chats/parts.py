"""An answer as ordered parts, built by folding its live events (docs/tools.md, "Parts").

The generation folds every event it emits into an `AnswerParts` before any reader sees it, so
the parts a checkpoint saves are always exactly the fold of events 1..`stream_seq`: a page
rendered from them and following the stream from there (or a relay, or a reload) ends with
the same parts as the database. `parts_fold` is that fold on its own, for the server's readers
and for tests; `static/js/chat.js` applies the same rules in the page.

The one thing a fold cannot learn from events is a reasoning part's provider `state` (never
shown, never an event): the accumulator keeps it beside the fold, so it reaches the database
with the step's checkpoint and the answer's end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tools.registry import ToolOutcome

Part = dict[str, Any]

# Event kinds that are content (folded); `done` ends the answer and changes no part.
CONTENT_KINDS = frozenset(
    {"step", "reasoning", "text", "tool", "tool-call", "tool-result", "notice"}
)

# What the model reads for a call whose answer ended before it ran (stopped, failed).
NOT_RUN_RESULT = {"error": {"type": "not_run", "message": "The call was not run."}}


def step_of(parts: Sequence[Mapping[str, Any]]) -> int:
    """The step saved `parts` end in, as far as a fold needs it.

    A `tool` event finds its call by (step, index), so a fold that starts from saved parts must
    know the step. Results always close a step and the next one follows them, so the step is
    one past the last result's, else the last call's, else the first.
    """
    step = 1
    for part in parts:
        if part.get("type") == "tool-result":
            step = max(step, int(part.get("step") or 1) + 1)
        elif part.get("type") == "tool-call":
            step = max(step, int(part.get("step") or 1))
    return step


class AnswerParts:
    """The parts of one answer so far, grown one live event at a time (the fold table)."""

    __slots__ = ("parts", "step")

    def __init__(self, parts: Iterable[Mapping[str, Any]] = ()) -> None:
        self.parts: list[Part] = [dict(part) for part in parts]
        self.step = step_of(self.parts)

    def apply(self, kind: str, data: Any) -> None:
        """Fold one event into the parts; unknown kinds (and `done`) change nothing."""
        parts = self.parts
        if kind == "text" or kind == "reasoning":
            if parts and parts[-1]["type"] == kind:
                parts[-1]["text"] += data
            else:
                parts.append({"type": kind, "text": data})
        elif kind == "tool":
            call = self._call_at(self.step, data["index"])
            if call is None:
                call = {"type": "tool-call", "step": self.step, "index": data["index"], "id": "",
                        "name": "", "arguments": "", "status": "pending"}  # fmt: skip
                parts.append(call)
            if data.get("id"):
                call["id"] = data["id"]
            if data.get("name"):
                call["name"] = data["name"]
            call["arguments"] += data.get("arguments") or ""
        elif kind == "tool-call":
            for part in reversed(parts):
                if part["type"] == "tool-call" and part["id"] == data["id"]:
                    part["status"] = data["status"]
                    break
        elif kind == "tool-result":
            parts.append({"type": "tool-result", "step": data["step"], "id": data["id"],
                          "name": data["name"], "result": data["result"],
                          "is_error": bool(data["is_error"])})  # fmt: skip
        elif kind == "notice":
            parts.append({"type": "notice", "kind": data["kind"], "text": data["text"]})
        elif kind == "step":
            self.step = int(data["step"])

    def _call_at(self, step: int, index: int) -> Part | None:
        for part in reversed(self.parts):
            if part["type"] == "tool-call" and part["step"] == step and part["index"] == index:
                return part
        return None

    # -- what the loop reads back -------------------------------------------------------------

    def step_calls(self, step: int) -> list[Part]:
        """The tool calls of `step`, in the order they streamed."""
        return [p for p in self.parts if p["type"] == "tool-call" and p["step"] == step]

    def step_text(self, since: int) -> str:
        """The text of the parts from index `since` on (one step's text)."""
        return "".join(p["text"] for p in self.parts[since:] if p["type"] == "text")

    def text(self) -> str:
        return "".join(p["text"] for p in self.parts if p["type"] == "text")

    def reasoning_state_set(self, since: int, state: Mapping[str, Any]) -> bool:
        """Keep the provider's reasoning `state` on the last reasoning part from index `since`
        on (the step's); False when the step has no reasoning part."""
        for part in reversed(self.parts[since:]):
            if part["type"] == "reasoning":
                part["state"] = dict(state)
                return True
        return False

    def snapshot(self) -> list[Part]:
        """A copy safe to serialise off the loop."""
        return [dict(part) for part in self.parts]


def parts_fold(
    events: Iterable[tuple[str, Any]], *, parts: Iterable[Mapping[str, Any]] = ()
) -> list[Part]:
    """Fold `(kind, data)` events in order onto `parts` (saved parts, or none)."""
    answer = AnswerParts(parts)
    for kind, data in events:
        answer.apply(kind, data)
    return answer.parts


def parts_without_state(parts: Iterable[Mapping[str, Any]]) -> list[Part]:
    """`parts` as events fold them: without the provider state and the rendered HTML."""
    return [
        {key: value for key, value in part.items() if key not in ("state", "html")}
        for part in parts
    ]


def text_parts_html(parts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The rendered HTML of each text part, in order (the `done` event's `parts_html`)."""
    return [str(part.get("html", "")) for part in parts if part.get("type") == "text"]


# -- replaying an answer's steps to the provider ------------------------------------------------


@dataclass
class _Step:
    text: list[str] = field(default_factory=list)
    state: Mapping[str, Any] | None = None
    calls: list[Mapping[str, Any]] = field(default_factory=list)
    results: dict[str, Mapping[str, Any]] = field(default_factory=dict)


def _arguments_sent(arguments: str) -> str:
    """The call's arguments as sent back: the model's own text when it is a JSON object, else
    `{}` (some providers refuse a call whose arguments they cannot parse; the call's error
    result already told the model what was wrong)."""
    try:
        return arguments if isinstance(orjson.loads(arguments or "{}"), dict) else "{}"
    except orjson.JSONDecodeError:
        return "{}"


def _step_messages(step: _Step, *, with_state: bool) -> list[dict[str, Any]]:
    text = "".join(step.text)
    calls = [call for call in step.calls if call.get("id") and call.get("name")]
    if not calls:
        return [{"role": "assistant", "content": text}] if text else []
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": call["id"], "type": "function",
             "function": {"name": call["name"], "arguments": _arguments_sent(call["arguments"])}}
            for call in calls
        ],
    }  # fmt: skip
    if with_state and step.state and step.state.get("thinking_blocks"):
        assistant["thinking_blocks"] = list(step.state["thinking_blocks"])
    messages = [assistant]
    for call in calls:
        result = step.results.get(call["id"])
        outcome = ToolOutcome(result=result["result"] if result else NOT_RUN_RESULT)
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": outcome.content()})
    return messages


def parts_messages(parts: Iterable[Mapping[str, Any]], *, with_state: bool) -> list[dict[str, Any]]:
    """An answer's parts as the provider reads them back (docs/tools.md, "The loop"): per step
    with tool calls, the assistant message with its calls and one tool message per call; the
    last step's text as a plain assistant message. Notices never go; reasoning text neither;
    reasoning `state` goes as `thinking_blocks` only `with_state` (the LiteLLM engine)."""
    messages: list[dict[str, Any]] = []
    step = _Step()
    for part in parts:
        kind = part.get("type")
        if step.results and kind in ("text", "reasoning", "tool-call"):
            messages += _step_messages(step, with_state=with_state)  # results close a step
            step = _Step()
        if kind == "text":
            step.text.append(str(part.get("text", "")))
        elif kind == "reasoning" and part.get("state"):
            step.state = part["state"]
        elif kind == "tool-call":
            step.calls.append(part)
        elif kind == "tool-result":
            step.results[str(part.get("id"))] = part
    return messages + _step_messages(step, with_state=with_state)
