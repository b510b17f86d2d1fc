"""The lean engine's Server-Sent Events parser."""

from __future__ import annotations

from models_registry.llm import SSEParser


def test_the_sse_parser_handles_split_lines_crlf_comments_and_multiline_data() -> None:
    parser = SSEParser()
    events = parser.feed(b': OPENROUTER PROCESSING\n\ndata: {"a"')
    events += parser.feed(b": 1}\r\n\r\ndata: line one\ndata: line two\n\nevent: x\ndata: [DONE]\n")
    events += parser.feed(b"\n")

    assert events == [b'{"a": 1}', b"line one\nline two", b"[DONE]"]
