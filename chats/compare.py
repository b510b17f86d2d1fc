"""The changes between two versions of a message, marked word by word, in bounded time.

The compare page once diffed two versions with difflib's SequenceMatcher on words: quadratic in
pure Python, 5.5 s for two 3,000-word answers and 30 s for 10,000 words, holding the process
all along. Here the texts are compared by lines first, then word by word inside the lines that
changed, both with RapidFuzz's LCS alignment (C++, bit-parallel: n·m/64 machine words, whatever
the texts hold). The work is capped: versions longer than MAX_CHARS are not diffed at all, and a
diff whose compared blocks add up to more than MAX_CELLS token pairs stops; either way the
result says it is capped (the page then shows both versions without marked changes). Below the
caps, two 10,000-word answers compare in milliseconds (bench/bench_compare.py).

Why not diff-match-patch: its Myers diff is pure Python; by lines then words it took 0.3 s for
two similar 10,000-word answers and 1.2 s for two different ones on the machine this was written
on, and word-level on the whole text it reached its one-second timeout already at 3,000 words.

Line breaks are kept (the page shows the diff with `white-space: pre-wrap`), and every piece of
text is HTML-escaped before `<del>`/`<ins>` are put around it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from django.utils.safestring import SafeString, mark_safe
from rapidfuzz.distance import Indel

# About 17,000 words a version: beyond all but the longest answers.
MAX_CHARS = 100_000
# Token pairs the alignments may cover in all (lines, then words of changed lines): about
# 30 ms of RapidFuzz's work, two 5,000-word changed paragraphs without a line break.
MAX_CELLS = 100_000_000
# Pieces of those alignments (shared or changed runs) in all: each costs Python work, and a
# diff of more than this many pieces is no longer read as a diff (texts of three words in
# random order reach it at about 15,000 words).
MAX_OPERATIONS = 12_000

# A word or a run of punctuation with the spaces after it (not a line break: the tokens around
# a changed line then align), or a run of whitespace: joined back, they are the text.
_TOKEN = re.compile(r"\w+[^\S\n\r]*|[^\w\s]+[^\S\n\r]*|\s+")


class Capped(StrEnum):
    NO = ""
    TOO_LONG = "too_long"
    TOO_DIFFERENT = "too_different"


@dataclass(frozen=True)
class DiffResult:
    """`html`: `before` and `after` in one text, removals in <del>, additions in <ins>.

    Empty when `capped`: then nothing is marked and `capped` says why.
    """

    html: SafeString
    capped: Capped = Capped.NO

    @property
    def notice(self) -> str:
        """Why changes are not marked, in the page's words; empty when they are."""
        if self.capped == Capped.TOO_LONG:
            return (
                "Changes are not marked: the versions are too long to compare "
                f"(more than {MAX_CHARS:,} characters)."
            )
        if self.capped == Capped.TOO_DIFFERENT:
            return "Changes are not marked: the versions are too different to compare word by word."
        return ""


@dataclass
class _Change:
    deleted: list[str] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)
    deleted_chars: int = 0
    inserted_chars: int = 0

    @property
    def size(self) -> int:
        """Characters of the larger side."""
        return max(self.deleted_chars, self.inserted_chars)

    def extend(self, deleted: Sequence[str], inserted: Sequence[str]) -> None:
        self.deleted += deleted
        self.inserted += inserted
        self.deleted_chars += sum(map(len, deleted))
        self.inserted_chars += sum(map(len, inserted))


_Piece = str | _Change  # a str is text both versions share
_Opcode = tuple[str, int, int, int, int]  # difflib's: tag, old start and end, new start and end


class _OverBudget(Exception):
    pass


@dataclass
class _Budget:
    cells: int
    operations: int


class _Pieces:
    """The diff as it is built: shared text and changes, merged and cleaned up on the way.

    Neighbouring changes merge. A shared stretch between two changes is folded into them when it
    is no longer than the larger side of either change (diff-match-patch's semantic rule: "the
    cat" rewritten as "a dog" reads better than each word marked apart around a kept space),
    unless it holds a line break, so paragraphs stay apart. One pass, forward only.
    """

    def __init__(self) -> None:
        self.items: list[_Piece] = []

    def shared(self, text: str) -> None:
        if not text:
            return
        items = self.items
        if items and isinstance(items[-1], str):
            items[-1] += text
        else:
            items.append(text)

    def change(self, deleted: Sequence[str], inserted: Sequence[str]) -> None:
        if not deleted and not inserted:
            return
        items = self.items
        last = items[-1] if items else None
        if isinstance(last, _Change):
            last.extend(deleted, inserted)
            return
        if isinstance(last, str) and len(items) >= 2 and "\n" not in last and "\r" not in last:
            previous = items[-2]
            assert isinstance(previous, _Change)  # shared stretches are merged
            size = max(sum(map(len, deleted)), sum(map(len, inserted)))
            if len(last) <= min(size, previous.size):
                items.pop()
                previous.extend([last, *deleted], [last, *inserted])
                return
        piece = _Change()
        piece.extend(deleted, inserted)
        items.append(piece)


def versions_diff(
    before: str,
    after: str,
    *,
    max_chars: int = MAX_CHARS,
    max_cells: int = MAX_CELLS,
    max_operations: int = MAX_OPERATIONS,
) -> DiffResult:
    """Mark what `after` removed from and added to `before`, word by word, within the caps."""
    if len(before) > max_chars or len(after) > max_chars:
        return DiffResult(html=SafeString(""), capped=Capped.TOO_LONG)
    try:
        pieces = _diff(before, after, budget=_Budget(max_cells, max_operations))
    except _OverBudget:
        return DiffResult(html=SafeString(""), capped=Capped.TOO_DIFFERENT)
    return DiffResult(html=_markup(pieces))


def _align(old: Sequence[str], new: Sequence[str], budget: _Budget) -> list[_Opcode]:
    """The LCS alignment of two token lists as difflib-style opcodes, charged to `budget`."""
    budget.cells -= len(old) * len(new)
    if budget.cells < 0:
        raise _OverBudget
    # Tokens as small integers: no hash collision can make two different tokens equal.
    ids: dict[str, int] = {}
    old_ids = [ids.setdefault(token, len(ids)) for token in old]
    new_ids = [ids.setdefault(token, len(ids)) for token in new]
    # as_list() gives difflib's tuples (its stub says Opcode objects).
    operations = cast(list[_Opcode], Indel.opcodes(old_ids, new_ids).as_list())
    budget.operations -= len(operations)
    if budget.operations < 0:
        raise _OverBudget
    return operations


def _diff(before: str, after: str, *, budget: _Budget) -> list[_Piece]:
    """Lines first; each run of changed lines, word by word."""
    old_lines, new_lines = before.splitlines(keepends=True), after.splitlines(keepends=True)
    pieces = _Pieces()
    deleted: list[str] = []
    inserted: list[str] = []
    for tag, a1, a2, b1, b2 in [
        *_align(old_lines, new_lines, budget),
        ("equal", len(old_lines), len(old_lines), 0, 0),
    ]:
        if tag != "equal":
            deleted += old_lines[a1:a2]
            inserted += new_lines[b1:b2]
            continue
        if deleted and inserted:
            _words(pieces, "".join(deleted), "".join(inserted), budget)
        else:
            pieces.change(deleted, inserted)
        deleted, inserted = [], []
        pieces.shared("".join(old_lines[a1:a2]))
    return pieces.items


def _words(pieces: _Pieces, before: str, after: str, budget: _Budget) -> None:
    old, new = _TOKEN.findall(before), _TOKEN.findall(after)
    # Words both keep at the start and at the end need no alignment (a paragraph with one word
    # changed costs nothing however long it is).
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    pieces.shared("".join(old[:head]))
    old_middle, new_middle = old[head : len(old) - tail], new[head : len(new) - tail]
    for tag, a1, a2, b1, b2 in _align(old_middle, new_middle, budget):
        if tag == "equal":
            pieces.shared("".join(old_middle[a1:a2]))
        else:
            pieces.change(old_middle[a1:a2], new_middle[b1:b2])
    pieces.shared("".join(old[len(old) - tail :]))


def _markup(pieces: Iterable[_Piece]) -> SafeString:
    parts: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(html.escape(piece))
            continue
        if piece.deleted:
            parts.append(f"<del>{html.escape(''.join(piece.deleted))}</del>")
        if piece.inserted:
            parts.append(f"<ins>{html.escape(''.join(piece.inserted))}</ins>")
    return mark_safe("".join(parts))  # noqa: S308  (every piece of text above is escaped)
