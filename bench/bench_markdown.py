"""Cost of rendering a finished chat message: Markdown, highlighting and sanitizing.

`markdown_typical_answer` is a 1,500-word answer with three fenced code blocks, a list and a table;
`markdown_long_answer` a 10,000-token answer (about 40,000 characters at four per token) built
the same way.

Baseline, same run: markdown-it's plain CommonMark render of the same text with tables and
strikethrough on, no highlighting and no sanitizer, i.e. the least any Markdown rendering costs.
No Django set-up and no database: the renderer needs neither.
"""

from __future__ import annotations

from functools import partial

from _harness import figure, paired_with_baseline
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


def main() -> None:
    typical = "\n\n".join(_section(i, CODE_BLOCKS[i]) for i in range(len(CODE_BLOCKS)))
    long = _answer(10_000 * CHARS_PER_TOKEN)
    plain = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    # One untimed call of each first warms the caches: lexers, parser, sanitizer.
    typical_run, long_run = (
        paired_with_baseline(
            partial(markdown_render, text),
            partial(plain.render, text),
            rounds=ROUNDS,
            calls=calls,
            warm_up=True,
        )
        for text, calls in ((typical, 20), (long, 5))
    )

    figure("markdown_typical_answer_words", len(typical.split()), "words", digits=0)
    figure("markdown_typical_answer", typical_run.ours * 1e3, "ms", digits=2)
    figure("markdown_it_plain_typical_baseline", typical_run.baseline * 1e3, "ms", digits=2)
    figure("markdown_long_answer_chars", len(long), "chars", digits=0)
    figure("markdown_long_answer", long_run.ours * 1e3, "ms", digits=2)
    figure("markdown_it_plain_long_baseline", long_run.baseline * 1e3, "ms", digits=2)
    figure("markdown_x_vs_plain", typical_run.ratio, "ratio", digits=2)
    figure("markdown_long_x_vs_plain", long_run.ratio, "ratio", digits=2)


if __name__ == "__main__":
    main()
