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
from collections.abc import Callable
from functools import partial

from _harness import figure, median_per_call_seconds, paired_with_baseline

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


def _median_ms(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    # One untimed call first: imports, regular expressions.
    return median_per_call_seconds(fn, rounds=rounds, warm_up=True) * 1e3


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
        run = paired_with_baseline(
            partial(versions_diff, *pair), partial(difflib_word_diff, *pair), rounds=BASELINE_ROUNDS
        )
        small[kind] = (run.ours * 1e3, run.baseline * 1e3, run.ratio)

    figure("compare_10000_words_similar_chars", len(similar[0]), "chars", digits=0)
    figure("compare_10000_words_similar", similar_ms, "ms", digits=1)
    figure("compare_10000_words_different", different_ms, "ms", digits=1)
    figure("compare_capped_100000_chars", capped_ms, "ms", digits=1)
    for kind, (ours_ms, baseline_ms, ratio) in small.items():
        suffix = "" if kind == "similar" else "_different"
        figure(f"compare_3000_words_{kind}", ours_ms, "ms", digits=1)
        figure(f"difflib_3000_words_{kind}_baseline", baseline_ms, "ms", digits=1)
        figure(f"compare_x_vs_difflib_3000_words{suffix}", ratio, "ratio", digits=4)


if __name__ == "__main__":
    main()
