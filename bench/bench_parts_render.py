"""Cost of rendering an answer's blocks on the chat page (chats/parts_display.py and the
`answer-parts` partial of templates/chats/_message.html), per answer.

`parts_render_text_answer`: a finished answer without tools (reasoning and one text part, its
HTML a 1,500-character Markdown rendering), the shape of nearly every answer on a page;
`parts_render_tool_answer`: an answer of three steps, each with reasoning, text and two tool
calls whose results print to about 2,000 characters (a weather forecast, a code run's output).

Baseline, same run: the answer's body as the page rendered it before answers had parts
(reasoning and `Message.html`, kept here as it was), on the text answer: what the layout of
parts costs an answer that has no tools. No database: the messages are unsaved rows.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import django
from _harness import figure, median_per_call_seconds, paired_with_baseline

django.setup()

from django.template import engines  # noqa: E402

from chats.models import Chat, Message  # noqa: E402

ROUNDS = 7
CALLS = 200

# The answer's body before parts (templates/chats/_message.html, as it was).
BEFORE = """{% with reasoning=message.reasoning %}
      <details class="reasoning"{% if not reasoning %} hidden{% endif %} data-reasoning>
        <summary>Reasoning</summary>
        <div class="reasoning-text" data-reasoning-text>{{ reasoning }}</div>
      </details>
      {% endwith %}
      {% if message.html %}
        <div class="message-content markdown">{{ message.html|safe }}</div>
      {% else %}
        <div class="message-content streaming-text" data-stream-text>{{ message.text }}</div>
      {% endif %}"""

HTML = (
    "<p>" + ("A sentence of an answer with <strong>some</strong> <code>code</code>. " * 22) + "</p>"
)
FORECAST = {
    "city": "Paris",
    "days": [
        {"date": f"2026-12-{day:02d}", "min": 3.5 + day, "max": 9.0 + day, "sky": "cloudy",
         "wind_kmh": 12.25, "rain_mm": 0.4 * day}
        for day in range(1, 14)
    ],
}  # fmt: skip


def _answer(parts: list[dict[str, Any]], html: str) -> Message:
    chat = Chat(id=uuid.uuid4())
    return Message(
        id=uuid.uuid4(), chat=chat, role=Message.Role.ASSISTANT, parts=parts, html=html,
        status=Message.Status.COMPLETE,
    )  # fmt: skip


def _tool_parts() -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for step in (1, 2, 3):
        parts.append({"type": "reasoning", "text": "I need the forecast and a computation. " * 5})
        parts.append({"type": "text", "text": "Looking.", "html": "<p>Looking.</p>"})
        for index, name in enumerate(("get_weather", "run_code")):
            parts.append({"type": "tool-call", "step": step, "index": index, "id": f"c{index}",
                          "name": name, "arguments": '{"city": "Paris", "days": 13}',
                          "status": "complete"})  # fmt: skip
        for index, name in enumerate(("get_weather", "run_code")):
            parts.append({"type": "tool-result", "step": step, "id": f"c{index}", "name": name,
                          "result": FORECAST, "is_error": False})  # fmt: skip
    parts.append({"type": "text", "text": "Done.", "html": HTML})
    return parts


def main() -> None:
    engine = engines["django"]
    before = engine.from_string(BEFORE)
    now = engine.get_template("chats/_message.html#answer-parts")
    text_answer = _answer(
        [{"type": "reasoning", "text": "Thinking it over. " * 10},
         {"type": "text", "text": "x" * 1500}],
        HTML,
    )  # fmt: skip
    tool_answer = _answer(_tool_parts(), HTML)
    printed = now.render({"message": tool_answer})
    assert printed.count("data-tool-call") == 6 and "Showing the first" not in printed

    run = paired_with_baseline(
        partial(now.render, {"message": text_answer}),
        partial(before.render, {"message": text_answer}),
        rounds=ROUNDS, calls=CALLS, warm_up=True,
    )  # fmt: skip
    tools_seconds = median_per_call_seconds(
        partial(now.render, {"message": tool_answer}), rounds=ROUNDS, calls=CALLS // 10,
        warm_up=True,
    )  # fmt: skip

    figure("parts_render_text_answer", run.ours * 1e6, "us", digits=1)
    figure("parts_render_text_answer_before_parts_baseline", run.baseline * 1e6, "us", digits=1)
    figure("parts_render_text_answer_x_vs_before", run.ratio, "ratio", digits=2)
    figure("parts_render_tool_answer", tools_seconds * 1e6, "us", digits=1)
    figure("parts_render_tool_answer_chars", len(printed), "chars", digits=0)


if __name__ == "__main__":
    main()
