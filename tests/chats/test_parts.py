"""The fold of an answer's live events into its parts (docs/tools.md), and their replay.

A page rendered from saved parts follows the stream from there, so the fold must give the same
parts whether it starts from nothing or from the parts saved at any point of the answer.
"""

from __future__ import annotations

from typing import Any

from chats.parts import parts_fold, parts_messages, step_of

STEP_ONE_CALL = {"index": 0, "id": "call_a", "name": "add", "arguments": ""}
EVENTS: list[tuple[str, Any]] = [
    ("reasoning", "Let me "),
    ("reasoning", "think."),
    ("text", "Adding "),
    ("text", "now."),
    ("tool", STEP_ONE_CALL),
    ("tool", {"index": 0, "id": None, "name": None, "arguments": '{"a": 1,'}),
    ("tool", {"index": 1, "id": "call_b", "name": "nope", "arguments": "{}"}),
    ("tool", {"index": 0, "id": None, "name": None, "arguments": ' "b": 2}'}),
    ("tool-call", {"id": "call_a", "status": "running"}),
    ("tool-call", {"id": "call_a", "status": "complete"}),
    ("tool-result", {"step": 1, "id": "call_a", "name": "add", "result": 3, "is_error": False}),
    ("tool-call", {"id": "call_b", "status": "running"}),
    ("tool-call", {"id": "call_b", "status": "error"}),
    ("tool-result", {"step": 1, "id": "call_b", "name": "nope",
                     "result": {"error": {"type": "unknown_tool"}}, "is_error": True}),
    ("step", {"step": 2}),
    ("tool", {"index": 0, "id": "call_c", "name": "add", "arguments": '{"a": 3, "b": 4}'}),
    ("tool-call", {"id": "call_c", "status": "running"}),
    ("tool-call", {"id": "call_c", "status": "complete"}),
    ("tool-result", {"step": 2, "id": "call_c", "name": "add", "result": 7, "is_error": False}),
    ("step", {"step": 3}),
    ("text", "It is "),
    ("text", "7."),
    ("notice", {"kind": "step-limit", "text": "Enough."}),
]  # fmt: skip


def test_the_events_fold_into_parts_in_the_order_they_happened() -> None:
    assert parts_fold(EVENTS) == [
        {"type": "reasoning", "text": "Let me think."},
        {"type": "text", "text": "Adding now."},
        {"type": "tool-call", "step": 1, "index": 0, "id": "call_a", "name": "add",
         "arguments": '{"a": 1, "b": 2}', "status": "complete"},
        {"type": "tool-call", "step": 1, "index": 1, "id": "call_b", "name": "nope",
         "arguments": "{}", "status": "error"},
        {"type": "tool-result", "step": 1, "id": "call_a", "name": "add", "result": 3,
         "is_error": False},
        {"type": "tool-result", "step": 1, "id": "call_b", "name": "nope",
         "result": {"error": {"type": "unknown_tool"}}, "is_error": True},
        {"type": "tool-call", "step": 2, "index": 0, "id": "call_c", "name": "add",
         "arguments": '{"a": 3, "b": 4}', "status": "complete"},
        {"type": "tool-result", "step": 2, "id": "call_c", "name": "add", "result": 7,
         "is_error": False},
        {"type": "text", "text": "It is 7."},
        {"type": "notice", "kind": "step-limit", "text": "Enough."},
    ]  # fmt: skip


def test_folding_on_from_the_parts_saved_at_any_point_gives_the_same_parts() -> None:
    whole = parts_fold(EVENTS)
    for seq in range(len(EVENTS) + 1):
        saved = parts_fold(EVENTS[:seq])
        assert parts_fold(EVENTS[seq:], parts=saved) == whole, f"resumed after event {seq}"


def test_a_second_steps_call_of_the_same_index_is_a_call_of_its_own_after_a_reload() -> None:
    before_step_two = parts_fold(EVENTS[:14])  # saved before the `step` event came

    assert step_of(before_step_two) == 2
    resumed = parts_fold(
        [("tool", {"index": 0, "id": "call_c", "name": "add", "arguments": "{}"})],
        parts=before_step_two,
    )
    assert [part["id"] for part in resumed if part["type"] == "tool-call"] == [
        "call_a", "call_b", "call_c"
    ]  # fmt: skip


def test_the_steps_replay_as_assistant_calls_and_tool_messages_without_notices() -> None:
    parts = parts_fold(EVENTS)
    parts[0]["state"] = {
        "thinking_blocks": [{"type": "thinking", "thinking": "x", "signature": "s"}]
    }

    lean = parts_messages(parts, with_state=False)
    litellm = parts_messages(parts, with_state=True)

    assert lean == [
        {"role": "assistant", "content": "Adding now.", "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
            {"id": "call_b", "type": "function", "function": {"name": "nope", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "3"},
        {"role": "tool", "tool_call_id": "call_b", "content": '{"error":{"type":"unknown_tool"}}'},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_c", "type": "function",
             "function": {"name": "add", "arguments": '{"a": 3, "b": 4}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_c", "content": "7"},
        {"role": "assistant", "content": "It is 7."},
    ]  # fmt: skip
    assert litellm[0]["thinking_blocks"] == parts[0]["state"]["thinking_blocks"]
    assert [message.get("thinking_blocks") for message in litellm[1:]] == [None] * 5


def test_a_call_left_without_a_result_replays_with_a_not_run_error() -> None:
    parts = parts_fold(EVENTS[:8])  # the answer failed while step 1's calls streamed

    messages = parts_messages(parts, with_state=False)

    assert [message["role"] for message in messages] == ["assistant", "tool", "tool"]
    assert all('"not_run"' in message["content"] for message in messages[1:])


def test_an_edited_answer_that_called_tools_keeps_its_calls_before_the_new_text() -> None:
    from chats.version_services import parts_with_text

    answer: list[dict[str, Any]] = [
        {"type": "text", "text": "Let me add."},
        {"type": "tool-call", "step": 1, "index": 0, "id": "c1", "name": "add",
         "arguments": '{"a":2,"b":3}', "status": "complete"},
        {"type": "tool-result", "step": 1, "id": "c1", "name": "add", "result": 5,
         "is_error": False},
        {"type": "text", "text": "The sum is 5.", "html": "<p>The sum is 5.</p>"},
    ]  # fmt: skip

    edited = parts_with_text(answer, "It is five.")

    assert [part["type"] for part in edited] == ["tool-call", "tool-result", "text"]
    assert edited[-1] == {"type": "text", "text": "It is five."}
    replay = parts_messages(edited, with_state=False)
    assert [message["role"] for message in replay] == ["assistant", "tool", "assistant"]
    assert replay[-1] == {"role": "assistant", "content": "It is five."}
