"""Cost of comparing two versions of an answer (the compare page's diff, chats/compare.py).

`compare_10000_words_similar`: two 10,000-word answers in paragraphs of 40 to 120 words, the
second like a regenerated one (a quarter of the paragraphs kept, a quarter rewritten, a quarter
with five words changed, a quarter followed by a new paragraph); `compare_10000_words_different`:
two unrelated answers of the same length and vocabulary, the worst case below the caps (every
paragraph changed, many words in common by chance). `compare_capped_100000_chars`: two unrelated
100,000-character texts without a line break, which the caps refuse to mark (what the refusal
costs).

Baseline, same run: the word diff the page used before (difflib's SequenceMatcher on words split
at spaces, kept here as it was), on 3,000-word answers, similar (`compare_x_vs_difflib_3000_words`)
and different (`..._different`): it grows with the square of the length
(30 s at 10,000 words), so the larger size is not run. No Django set-up and no database.
"""

from __future__ import annotations

import difflib
import html
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chats.compare import Capped, versions_diff
from tests.chats.answer_texts import VOCABULARY
from tests.chats.answer_texts import answer as _answer
from tests.chats.answer_texts import regenerated as _regenerated

ROUNDS = 7
BASELINE_ROUNDS = 3


def _pair(words: int, *, similar: bool) -> tuple[str, str]:
    paragraphs = _answer(1, words)
    other = _regenerated(paragraphs, 2) if similar else _answer(3, words)
    return "\n\n".join(paragraphs), "\n\n".join(other)


def difflib_word_diff(before: str, after: str) -> str:
    """The page's former word diff, as it was (chats/tree_views.py `_word_diff`)."""
    old, new = before.split(" "), after.split(" ")
    out: list[str] = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{html.escape(' '.join(old[a1:a2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{html.escape(' '.join(new[b1:b2]))}</ins>")
        if op == "equal":
            out.append(html.escape(" ".join(old[a1:a2])))
    return " ".join(out)


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _median_ms(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    fn()  # warm up: imports, regular expressions
    return statistics.median(_ms(fn) for _ in range(rounds))


def main() -> None:
    similar = _pair(10_000, similar=True)
    different = _pair(10_000, similar=False)
    for pair in (similar, different):
        assert versions_diff(*pair).capped == Capped.NO  # the figures are of marked diffs
    rng = random.Random(4)
    capped = tuple(
        " ".join(rng.choice(VOCABULARY) for _ in range(25_000))[:100_000] for _ in range(2)
    )
    assert versions_diff(*capped).capped != Capped.NO

    similar_ms = _median_ms(lambda: versions_diff(*similar))
    different_ms = _median_ms(lambda: versions_diff(*different))
    capped_ms = _median_ms(lambda: versions_diff(*capped))

    # The baseline and ours on the same 3,000-word pairs, alternating so that load from other
    # processes hits both alike.
    small: dict[str, tuple[float, float, float]] = {}
    for kind, pair in (
        ("similar", _pair(3_000, similar=True)),
        ("different", _pair(3_000, similar=False)),
    ):
        ours: list[float] = []
        baseline: list[float] = []
        for _ in range(BASELINE_ROUNDS):
            ours.append(_ms(partial(versions_diff, *pair)))
            baseline.append(_ms(partial(difflib_word_diff, *pair)))
        ratio = statistics.median(a / b for a, b in zip(ours, baseline, strict=True))
        small[kind] = (statistics.median(ours), statistics.median(baseline), ratio)

    print(f"compare_10000_words_similar_chars: {len(similar[0])} chars")
    print(f"compare_10000_words_similar: {similar_ms:.1f} ms")
    print(f"compare_10000_words_different: {different_ms:.1f} ms")
    print(f"compare_capped_100000_chars: {capped_ms:.1f} ms")
    for kind, (ours_ms, baseline_ms, ratio) in small.items():
        suffix = "" if kind == "similar" else "_different"
        print(f"compare_3000_words_{kind}: {ours_ms:.1f} ms")
        print(f"difflib_3000_words_{kind}_baseline: {baseline_ms:.1f} ms")
        print(f"compare_x_vs_difflib_3000_words{suffix}: {ratio:.4f} ratio")


if __name__ == "__main__":
    main()
