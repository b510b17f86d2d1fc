"""An answer's parts as the page shows them, in the order they happened (docs/tools.md, "Parts").

The page folds the live events onto the same elements (`static/js/chat.js`), so a page rendered
from saved parts and then following the stream ends with exactly the elements of a page rendered
from the final parts. Everything here that decides what an element holds has a twin there, and
both must stay alike:

- the layout: a hidden, empty reasoning block first when the answer does not open with
  reasoning, and an empty text block last when it has no text (an answer without tool parts
  renders as it always did: reasoning, then its text);
- a tool call and its result share one element: a result belongs to the latest call with its id
  that has none yet (ids may repeat across steps);
- JSON is shown with `json_reindent` (keys as written, numbers as written) and a result's text
  with keys sorted and numbers written as JavaScript writes them (`json_compact`), so that both
  sides print the same characters whether the value came from an event or from the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

# A result longer than this (in characters of its printed JSON) is shown cut, with a note;
# `RESULT_DISPLAY_CHARS` in static/js/chat.js is the same number.
RESULT_DISPLAY_CHARS = 4000

TOOL_STATUS_LABELS: dict[str, str] = {
    "pending": "Waiting",
    "running": "Running…",
    "complete": "Done",
    "error": "Failed",
    "unfinished": "Not finished",
}

_CLOSING = {"{": "}", "[": "]"}
_BLANK = " \t\n\r"


@dataclass
class ToolShown:
    """A tool call and its result (either may be missing), as one collapsed block."""

    name: str
    call_id: str
    index: str  # the call's index in its step ("" for a result without a call)
    status: str  # a key of TOOL_STATUS_LABELS
    arguments: str | None  # the raw JSON text the model wrote; None without a call
    result: str | None = None  # the printed result, cut to RESULT_DISPLAY_CHARS
    result_chars: int = 0  # the printed result's whole length
    is_error: bool = False

    @property
    def arguments_pretty(self) -> str:
        return json_reindent(self.arguments or "")

    @property
    def status_label(self) -> str:
        return TOOL_STATUS_LABELS.get(self.status, self.status)

    @property
    def result_cut_note(self) -> str:
        """What says the result is cut ("" when it is whole)."""
        if self.result is None or self.result_chars <= RESULT_DISPLAY_CHARS:
            return ""
        return f"Showing the first {RESULT_DISPLAY_CHARS:,} of {self.result_chars:,} characters."


@dataclass
class PartShown:
    kind: str  # "reasoning" | "text" | "tool" | "notice"
    text: str = ""
    html: str = ""
    placeholder: bool = False  # the empty reasoning or text block every answer has
    notice_kind: str = ""
    tool: ToolShown | None = field(default=None)


def parts_display(
    *, parts: Sequence[Mapping[str, Any]], message_html: str, streaming: bool
) -> list[PartShown]:
    """The blocks an answer shows, in order (see the module's docstring for the layout).

    `message_html` is the rendering of all text parts together: the html of an answer with a
    single text part saved before parts carried their own.
    """
    texts = sum(1 for part in parts if part.get("type") == "text")
    shown: list[PartShown] = []
    for part in parts:
        kind = part.get("type")
        if kind == "reasoning":
            shown.append(PartShown(kind="reasoning", text=str(part.get("text", ""))))
        elif kind == "text":
            html = part.get("html") or (message_html if texts == 1 else "")
            shown.append(PartShown(kind="text", text=str(part.get("text", "")), html=html))
        elif kind == "tool-call":
            shown.append(PartShown(kind="tool", tool=_call_shown(part, streaming=streaming)))
        elif kind == "tool-result":
            _result_attach(shown, part)
        elif kind == "notice":
            notice_kind = str(part.get("kind", ""))
            shown.append(
                PartShown(kind="notice", text=str(part.get("text", "")), notice_kind=notice_kind)
            )
    if not shown or shown[0].kind != "reasoning":
        shown.insert(0, PartShown(kind="reasoning", placeholder=True))
    if not any(item.kind == "text" for item in shown):
        shown.append(PartShown(kind="text", placeholder=True))
    return shown


def _call_shown(part: Mapping[str, Any], *, streaming: bool) -> ToolShown:
    status = str(part.get("status") or "pending")
    if not streaming and status in ("pending", "running"):
        status = "unfinished"  # the answer ended (interrupted) before the call did
    return ToolShown(
        name=str(part.get("name") or ""),
        call_id=str(part.get("id") or ""),
        index=str(part.get("index", "")),
        status=status,
        arguments=str(part.get("arguments") or ""),
    )


def _result_attach(shown: list[PartShown], part: Mapping[str, Any]) -> None:
    """Put a result into the latest call with its id that has no result yet, else on its own."""
    call_id = str(part.get("id") or "")
    printed = json_reindent(json_compact(part.get("result")))
    is_error = bool(part.get("is_error"))
    for item in reversed(shown):
        tool = item.tool
        if tool is not None and tool.call_id == call_id and tool.result is None:
            break
    else:
        status = "error" if is_error else "complete"
        tool = ToolShown(
            name=str(part.get("name") or ""), call_id=call_id, index="", status=status,
            arguments=None,
        )  # fmt: skip
        shown.append(PartShown(kind="tool", tool=tool))
    tool.result = printed[:RESULT_DISPLAY_CHARS]
    tool.result_chars = len(printed)
    tool.is_error = is_error


# JSON's pieces: a string (maybe still open), a run of blanks, one structural character, or a
# run of anything else (numbers, literals, whatever a model wrote that is not JSON).
_JSON_PIECE = re.compile(
    r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[ \t\n\r]+|[{}\[\],:]|[^"{}\[\],: \t\n\r]+', re.DOTALL
)


def json_reindent(text: str) -> str:
    """`text` (JSON, maybe partial) laid out with two-space indents, as `JSON.stringify(value,
    null, 2)` lays it out, but piece by piece: numbers and escapes stay as written, and a
    piece of a call's arguments still streaming is laid out too."""
    out: list[str] = []
    depth = 0
    pieces = [piece for piece in _JSON_PIECE.findall(text) if piece[0] not in _BLANK]
    position = 0
    while position < len(pieces):
        piece = pieces[position]
        position += 1
        if piece in _CLOSING:
            if position < len(pieces) and pieces[position] == _CLOSING[piece]:
                out.append(piece + _CLOSING[piece])
                position += 1
            else:
                depth += 1
                out.append(piece + "\n" + "  " * depth)
        elif piece in ("}", "]"):
            depth = max(depth - 1, 0)
            out.append("\n" + "  " * depth + piece)
        elif piece == ",":
            out.append(",\n" + "  " * depth)
        elif piece == ":":
            out.append(": ")
        else:
            out.append(piece)
    return "".join(out)


# In orjson's compact output: a string (kept), or a number (a float's is rewritten).
_JSON_STRING_OR_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*', re.DOTALL)


def json_compact(value: Any) -> str:
    """`value` as compact JSON with its keys sorted and its numbers written as JavaScript writes
    them (`1.0` is `1`): what `JSON.stringify` gives for the same value with sorted keys.

    orjson writes it (its strings are escaped as `JSON.stringify` escapes them), then only its
    floats are rewritten; a value orjson refuses (an integer beyond 64 bits) is written here.
    """
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return _compact(value)
    return _JSON_STRING_OR_NUMBER.sub(_number_as_javascript, text)


def _number_as_javascript(found: re.Match[str]) -> str:
    token = found.group(0)
    if token[0] == '"':
        return token
    # An exponent, a negative zero, or an integer a double does not hold exactly (JavaScript
    # reads every number as a double).
    if "e" in token or "E" in token or token == "-0.0" or len(token) > 15:
        return _js_number(float(token))
    # The same shortest digits without an exponent: only a whole float's ".0" differs.
    return token[:-2] if token.endswith(".0") else token


def _compact(value: Any) -> str:
    """`json_compact`, one value at a time (slower, for what orjson refuses)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return _js_number(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        members = (f"{_compact(key)}:{_compact(item)}" for key, item in items)
        return "{" + ",".join(members) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_compact(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _js_number(number: float) -> str:
    """A float as JavaScript's `Number.prototype.toString` writes it (the shortest digits that
    read back, Python's `repr`, with JavaScript's choice of when to use an exponent)."""
    if number != number or number in (float("inf"), float("-inf")):
        return "null"  # as JSON.stringify writes them
    if number.is_integer() and abs(number) < 2**53:  # exact: the integer's own digits
        return str(int(number))
    sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    # The decimal point sits after `point` digits.
    point = exponent + len("".join(map(str, digit_tuple)))
    prefix = "-" if sign else ""
    if 0 < point <= 21:
        if len(digits) <= point:
            return prefix + digits + "0" * (point - len(digits))
        return prefix + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return prefix + "0." + "0" * -point + digits
    power = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{prefix}{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"
