"""Long answer texts for compare's tests and its benchmark: seeded paragraphs of a small
vocabulary, and a "regenerated" version of them (some paragraphs kept, some rewritten)."""

from __future__ import annotations

import random

WORDS = (
    "the a of to and in is it that for on with as this by be are from at or an can request "
    "handler reads each row once keeps result small cache so later calls return quickly while "
    "index stays consistent what database holds query plan table column value user message"
)
VOCABULARY = tuple(WORDS.split(" "))


def paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(words)).capitalize() + "."


def answer(seed: int, words: int) -> list[str]:
    """Paragraphs of 40 to 120 words, `words` words in all."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    while sum(len(item.split()) for item in paragraphs) < words:
        paragraphs.append(paragraph(rng, rng.randint(40, 120)))
    return paragraphs


def regenerated(paragraphs: list[str], seed: int) -> list[str]:
    """Like a regenerated answer: a quarter each kept, rewritten, touched up, or followed by
    a new paragraph."""
    rng = random.Random(seed)
    out: list[str] = []
    for number, text in enumerate(paragraphs):
        kind = number % 4
        if kind == 1:
            out.append(paragraph(rng, len(text.split())))
            continue
        if kind == 2:
            words = text.split()
            for _ in range(5):
                words[rng.randrange(len(words))] = rng.choice(VOCABULARY)
            text = " ".join(words)
        out.append(text)
        if kind == 3:
            out.append(paragraph(rng, 30))
    return out
