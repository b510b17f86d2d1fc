"""Cost of rendering a finished chat message: Markdown, highlighting and sanitizing.

`markdown_typical_answer` is a 1,500-word answer with three fenced code blocks, a list and a table;
`markdown_long_answer` a 10,000-token answer (about 40,000 characters at four per token) built
the same way.

Baseline, same run: markdown-it's plain CommonMark render of the same text with tables and
strikethrough on, no highlighting and no sanitizer, i.e. the least any Markdown rendering costs.
No Django set-up and no database: the renderer needs neither.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from markdown_it import MarkdownIt

from chats.markdown import markdown_render

ROUNDS = 7
CHARS_PER_TOKEN = 4

SENTENCE = (
    "the request handler reads each row once and keeps the result in a small cache so that "
    "later calls return quickly while the index stays consistent with what the database holds"
)
WORDS = tuple(SENTENCE.split(" "))

CODE_BLOCKS = (
    "```python\n"
    "from dataclasses import dataclass\n\n\n"
    "@dataclass(frozen=True)\n"
    "class Row:\n"
    "    id: int\n"
    "    name: str\n\n\n"
    "def load(rows: list[dict[str, object]]) -> dict[int, Row]:\n"
    '    """Index rows by id."""\n'
    "    return {int(r['id']): Row(int(r['id']), str(r['name'])) for r in rows}  # once\n"
    "```",
    "```javascript\n"
    "export async function fetchRows(url) {\n"
    "  const response = await fetch(url, { headers: { Accept: 'application/json' } });\n"
    "  if (!response.ok) throw new Error(`HTTP ${response.status}`);\n"
    "  return (await response.json()).rows.filter((row) => row.id > 0);\n"
    "}\n"
    "```",
    "```bash\n"
    'set -euo pipefail\nfor file in data/*.csv; do\n  echo "loading $file"\n'
    '  psql "$DATABASE_URL" -c "\\copy rows from $file csv header"\ndone\n'
    "```",
)


def _paragraph(index: int, words: int) -> str:
    picked = [WORDS[(index * 7 + i) % len(WORDS)] for i in range(words)]
    # Inline markup in proportion: one bold, one code span and one link per ~30 words.
    for at in range(0, words - 9, 30):
        picked[at + 3] = f"**{picked[at + 3]}**"
        picked[at + 6] = f"`{picked[at + 6]}()`"
        picked[at + 9] = f"[{picked[at + 9]}](https://example.com/docs/{index})"
    return " ".join(picked).capitalize() + "."


def _section(index: int, code: str) -> str:
    """About 500 words: a heading, prose, a list, a table and one code block."""
    paragraphs = [_paragraph(index * 10 + i, 90) for i in range(4)]
    bullets = "\n".join(f"- {_paragraph(index * 10 + i, 12)}" for i in range(5))
    table = "| step | cost | note |\n|:--|--:|---|\n" + "\n".join(
        f"| {i} | {i * 3} ms | {WORDS[i]} {WORDS[i + 1]} |" for i in range(6)
    )
    heading = f"## Part {index + 1}"
    first, second, third, fourth = paragraphs
    return "\n\n".join([heading, first, second, bullets, code, third, table, fourth])


def _answer(min_chars: int) -> str:
    sections: list[str] = []
    while sum(map(len, sections)) < min_chars or len(sections) < len(CODE_BLOCKS):
        sections.append(_section(len(sections), CODE_BLOCKS[len(sections) % len(CODE_BLOCKS)]))
    return "\n\n".join(sections)


def _per_call_ms(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def _paired_median_ms(
    ours: Callable[[], object], baseline: Callable[[], object], calls: int
) -> tuple[float, float, float]:
    """Median ms per call of each, and the median of per-round ratios.

    Rounds alternate between the two so that load from other processes hits both alike.
    """
    ours()  # warm caches: lexers, parser, sanitizer
    baseline()
    ours_ms: list[float] = []
    baseline_ms: list[float] = []
    for _ in range(ROUNDS):
        ours_ms.append(_per_call_ms(ours, calls))
        baseline_ms.append(_per_call_ms(baseline, calls))
    ratios = [a / b for a, b in zip(ours_ms, baseline_ms, strict=True)]
    return statistics.median(ours_ms), statistics.median(baseline_ms), statistics.median(ratios)


def main() -> None:
    typical = "\n\n".join(_section(i, CODE_BLOCKS[i]) for i in range(len(CODE_BLOCKS)))
    long = _answer(10_000 * CHARS_PER_TOKEN)
    plain = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    typical_ms, typical_plain_ms, typical_ratio = _paired_median_ms(
        lambda: markdown_render(typical), lambda: plain.render(typical), calls=20
    )
    long_ms, long_plain_ms, long_ratio = _paired_median_ms(
        lambda: markdown_render(long), lambda: plain.render(long), calls=5
    )

    print(f"markdown_typical_answer_words: {len(typical.split())} words")
    print(f"markdown_typical_answer: {typical_ms:.2f} ms")
    print(f"markdown_it_plain_typical_baseline: {typical_plain_ms:.2f} ms")
    print(f"markdown_long_answer_chars: {len(long)} chars")
    print(f"markdown_long_answer: {long_ms:.2f} ms")
    print(f"markdown_it_plain_long_baseline: {long_plain_ms:.2f} ms")
    print(f"markdown_x_vs_plain: {typical_ratio:.2f} ratio")
    print(f"markdown_long_x_vs_plain: {long_ratio:.2f} ratio")


if __name__ == "__main__":
    main()
