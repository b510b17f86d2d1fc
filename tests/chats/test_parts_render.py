"""An answer's parts as the chat page renders them: every kind in order, tool calls collapsed
with their status, arguments and result, and answers without tools exactly as before."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from accounts.models import User
from chats.models import Chat, Message
from chats.parts_display import RESULT_DISPLAY_CHARS, json_compact, json_reindent
from chats.services import message_send

pytestmark = pytest.mark.django_db

MODEL = "fake:fake-model"

EVERY_PART: list[dict[str, Any]] = [
    {"type": "reasoning", "text": "The user wants the weather."},
    {"type": "text", "text": "Let me look.", "html": "<p>Let me look.</p>"},
    {"type": "tool-call", "step": 1, "index": 0, "id": "call_1", "name": "get_weather",
     "arguments": '{"city": "Paris", "days": 2}', "status": "complete"},
    {"type": "tool-call", "step": 1, "index": 1, "id": "call_2", "name": "run_code",
     "arguments": '{"code": "1/0"}', "status": "error"},
    {"type": "tool-result", "step": 1, "id": "call_1", "name": "get_weather",
     "result": {"temperature": 21.5, "unit": "C"}, "is_error": False},
    {"type": "tool-result", "step": 1, "id": "call_2", "name": "run_code",
     "result": {"error": {"type": "runtime", "message": "division by zero"}}, "is_error": True},
    {"type": "text", "text": "It is mild in Paris.",
     "html": "<p>It is <em>mild</em> in Paris.</p>"},
    {"type": "notice", "kind": "step-limit", "text": "The answer reached its limit of steps."},
]  # fmt: skip


def _answer(user: User, parts: list[dict[str, Any]], **fields: Any) -> tuple[Chat, Message]:
    turn = message_send(user_id=user.id, chat=None, text="Weather in Paris?", model_id=MODEL)
    values = {"status": Message.Status.COMPLETE, "parts": parts, **fields}
    Message.objects.filter(id=turn.answer.id).update(**values)
    return turn.chat, Message.objects.get(id=turn.answer.id)


def _answer_body(client: Client, chat: Chat, answer: Message) -> str:
    """The `.message-body` of the answer's article on the chat's page."""
    page = client.get(f"/c/{chat.id}/").content.decode()
    article = page[page.index(f'id="m-{answer.id}"') :]
    body = article[article.index('<div class="message-body">') : article.index("<footer")]
    return body


def _blocks(body: str) -> list[str]:
    """The answer's blocks in order, named by their marking attribute."""
    names = (
        r"data-reasoning(?=[\s>])|data-stream-text|message-content markdown|data-tool-call\b"
        r"|data-notice"
    )
    return [found.group(0) for found in re.finditer(names, body)]


def test_an_answer_shows_every_kind_of_part_in_the_order_it_happened(
    alice: User, alice_client: Client
) -> None:
    chat, answer = _answer(alice, EVERY_PART, html="<p>Let me look.</p><p>It is mild.</p>")

    body = _answer_body(alice_client, chat, answer)

    assert _blocks(body) == [
        "data-reasoning",
        "message-content markdown",
        "data-tool-call",
        "data-tool-call",
        "message-content markdown",
        "data-notice",
    ]
    assert '<details class="reasoning" data-reasoning>' in body  # not hidden
    assert "The user wants the weather." in body
    assert "<p>Let me look.</p>" in body and "<p>It is <em>mild</em> in Paris.</p>" in body
    weather, code = body.split("data-tool-call ")[1:3]
    assert 'data-call-status="complete"' in weather and ">Done</span>" in weather
    assert ">get_weather</span>" in weather
    assert "{\n  &quot;city&quot;: &quot;Paris&quot;,\n  &quot;days&quot;: 2\n}" in weather
    assert "{\n  &quot;temperature&quot;: 21.5,\n  &quot;unit&quot;: &quot;C&quot;\n}" in weather
    assert 'data-call-status="error"' in code and ">Failed</span>" in code
    assert 'class="tool-result tool-result-error"' in code and "division by zero" in code
    assert (
        '<p class="notice" role="note" data-notice="step-limit">'
        "The answer reached its limit of steps.</p>"
    ) in body


def test_an_answer_without_tool_parts_renders_as_it_always_did(
    alice: User, alice_client: Client
) -> None:
    parts = [{"type": "text", "text": "Hello **there**."}]
    chat, answer = _answer(alice, parts, html="<p>Hello <strong>there</strong>.</p>")

    body = _answer_body(alice_client, chat, answer)

    assert _blocks(body) == ["data-reasoning", "message-content markdown"]
    assert '<details class="reasoning" hidden data-reasoning>' in body
    assert '<div class="reasoning-text" data-reasoning-text></div>' in body
    assert (
        '<div class="message-content markdown"><p>Hello <strong>there</strong>.</p></div>' in body
    )
    assert "data-tool-call" not in body and "data-notice" not in body


def test_a_streaming_answer_shows_its_saved_text_and_reasoning_plainly(
    alice: User, alice_client: Client
) -> None:
    parts = [{"type": "reasoning", "text": "Hmm <b>"}, {"type": "text", "text": "So far <i>"}]
    chat, answer = _answer(alice, parts, status=Message.Status.STREAMING, stream_seq=4)

    body = _answer_body(alice_client, chat, answer)

    assert _blocks(body) == ["data-reasoning", "data-stream-text"]
    assert "Hmm &lt;b&gt;" in body
    assert (
        '<div class="message-content streaming-text" data-stream-text>So far &lt;i&gt;</div>'
        in body
    )


def test_a_running_call_has_a_polite_live_status_with_a_spinner_and_an_empty_text_block_last(
    alice: User, alice_client: Client
) -> None:
    call = {"type": "tool-call", "step": 1, "index": 0, "id": "c1", "name": "run_code",
            "arguments": '{"code": "2+2"', "status": "running"}  # fmt: skip
    chat, answer = _answer(alice, [call], status=Message.Status.STREAMING, stream_seq=3)

    body = _answer_body(alice_client, chat, answer)

    # A hidden reasoning block first, the call, and the text block an answer ends with.
    assert _blocks(body) == ["data-reasoning", "data-tool-call", "data-stream-text"]
    assert (
        '<span class="tool-status" data-tool-status aria-live="polite">'
        '<span class="spinner" aria-hidden="true"></span>Running…</span>'
    ) in body
    # Arguments still streaming are laid out as far as they go.
    assert "{\n  &quot;code&quot;: &quot;2+2&quot;</pre>" in body


def test_a_call_an_interrupted_answer_left_running_says_it_did_not_finish(
    alice: User, alice_client: Client
) -> None:
    call = {"type": "tool-call", "step": 1, "index": 0, "id": "c1", "name": "run_code",
            "arguments": "{}", "status": "running"}  # fmt: skip
    chat, answer = _answer(alice, [call], status=Message.Status.INTERRUPTED)

    body = _answer_body(alice_client, chat, answer)

    assert 'data-call-status="unfinished"' in body and ">Not finished</span>" in body
    assert "spinner" not in body


def test_a_long_result_is_shown_cut_with_a_note_saying_how_long_it_is(
    alice: User, alice_client: Client
) -> None:
    result = {"output": "x" * 10_000}
    parts = [
        {"type": "tool-call", "step": 1, "index": 0, "id": "c1", "name": "run_code",
         "arguments": "{}", "status": "complete"},
        {"type": "tool-result", "step": 1, "id": "c1", "name": "run_code", "result": result,
         "is_error": False},
    ]  # fmt: skip
    chat, answer = _answer(alice, parts)

    body = _answer_body(alice_client, chat, answer)

    printed = json_reindent(json_compact(result))
    assert f">{escape(printed[:RESULT_DISPLAY_CHARS])}</pre>" in body
    assert escape(printed[: RESULT_DISPLAY_CHARS + 1]) not in body
    assert f"Showing the first 4,000 of {len(printed):,} characters." in body


def test_results_go_to_the_latest_call_with_their_id_when_ids_repeat_across_steps(
    alice: User, alice_client: Client
) -> None:
    def call(step: int, value: str) -> dict[str, Any]:
        return {"type": "tool-call", "step": step, "index": 0, "id": "call_0",
                "name": "get_weather", "arguments": f'{{"city": "{value}"}}',
                "status": "complete"}  # fmt: skip

    def result(step: int, value: str) -> dict[str, Any]:
        return {"type": "tool-result", "step": step, "id": "call_0", "name": "get_weather",
                "result": {"city": value}, "is_error": False}  # fmt: skip

    parts = [call(1, "Oslo"), result(1, "Oslo"), call(2, "Rome"), result(2, "Rome")]
    chat, answer = _answer(alice, parts)

    body = _answer_body(alice_client, chat, answer)

    oslo, rome = body.split("data-tool-call ")[1:]
    # Its arguments (kept, and shown) and its result.
    assert oslo.count("Oslo") == 3 and "Rome" not in oslo
    assert rome.count("Rome") == 3 and "Oslo" not in rome


def test_what_a_model_or_a_tool_wrote_is_escaped(alice: User, alice_client: Client) -> None:
    parts: list[dict[str, Any]] = [
        {"type": "tool-call", "step": 1, "index": 0, "id": "c1", "name": "<img src=x>",
         "arguments": '{"q": "<script>alert(1)</script>"}', "status": "complete"},
        {"type": "tool-result", "step": 1, "id": "c1", "name": "<img src=x>",
         "result": "<script>alert(2)</script>", "is_error": False},
        {"type": "notice", "kind": '"><script>', "text": "<script>alert(3)</script>"},
    ]  # fmt: skip
    chat, answer = _answer(alice, parts)

    body = _answer_body(alice_client, chat, answer)

    assert "<script>" not in body and "<img src=x>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        # What JavaScript's JSON.stringify writes, so a result folded live and one read back
        # from the database show the same characters.
        (1.0, "1"),
        (100.0, "100"),
        (21.5, "21.5"),
        (1e21, "1e+21"),
        (2.5e25, "2.5e+25"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-0.0, "0"),
        (1e16, "10000000000000000"),
        (26038872895041968.0, "26038872895041970"),
        (2**60, "1152921504606847000"),  # read as a double, as the browser reads it
        (2**70, "1.1805916207174113e+21"),  # beyond what orjson writes
        ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'),
        ("é\n", '"é\\n"'),
    ],
)
def test_results_are_printed_as_the_browser_prints_them(value: Any, printed: str) -> None:
    assert json_compact(value) == printed


def test_json_is_laid_out_with_its_numbers_and_strings_as_written() -> None:
    assert json_reindent('{"a": [1.0, {}, [ ]], "s": "x, y: {z}"}') == (
        '{\n  "a": [\n    1.0,\n    {},\n    []\n  ],\n  "s": "x, y: {z}"\n}'
    )


@pytest.mark.parametrize(
    ("text", "laid_out"),
    [
        # What static/js/chat.js's jsonReindent gives for the same text (checked with Node):
        # both sides must lay out a call's arguments alike, also half streamed or not JSON.
        ('{"a": "x\\', '{\n  "a": "x\\'),
        ('"a\\\nb" : 1', '"a\\\nb": 1'),
        ('{"s": "q\\"{[,:"}', '{\n  "s": "q\\"{[,:"\n}'),
        ('[[],[{}],{"k":[ ]}]', '[\n  [],\n  [\n    {}\n  ],\n  {\n    "k": []\n  }\n]'),
        ("  1 , 2  ", "1,\n2"),
        ('{"a":"\t tab"}', '{\n  "a": "\t tab"\n}'),
        ('{"open": "unterminated', '{\n  "open": "unterminated'),
        ("garbage here: {x]", "garbagehere: {\n  x\n]"),
    ],
)
def test_arguments_are_laid_out_as_the_page_lays_them_out_while_streaming(
    text: str, laid_out: str
) -> None:
    assert json_reindent(text) == laid_out
