"""The archive: search over a large archive, and what pins cost the send path.

Why: the model searches the archive inside an answer's tool loop and the user as they type in
the pin picker, so a search must stay fast whatever the archive's size; and pinned memory is
read on every send, so it must cost the send path one statement at most.

Set-up: a scratch database (bench/_harness.py) with one user of 100,000 entries among three
other users of 20,000 each (160,000 rows). Each entry: a title of 3 words and a body of 40,
drawn uniformly from 5,000 words, 2 of 30 tags, created one second apart. Inserted in SQL, so
the generated search vector and the GIN indexes are built as in production; then ANALYZE.

Figures (`name: value unit`):
- archive_search_p95 (target <= 30 ms): `archive.selectors.entries_search` for the large
  user, in this process, over SEARCHES searches: one word, two words, a quoted phrase, an
  excluded word, a word with a tag filter (any and all), each first page and the page after
  its cursor. archive_search_median likewise. archive_browse_p95: no query (newest first),
  with and without tag filters (any / all), first pages and later ones.
- send_statements_with_pins / send_statements_without_pins (target: +1 at most): the SQL
  statements of one follow-up send over Django's test client (CaptureQueriesContext, in
  process, session and BEGIN/COMMIT included), in a chat with 3 pinned entries and in one
  without; new_chat_statements_with_pins / new_chat_statements_without_pins: a new chat's
  send with 3 entries staged on its page and without.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from typing import Any

from _harness import Setup, bench_main, comment, p95, report

ENTRIES_MAIN = 100_000
ENTRIES_OTHERS = (20_000, 20_000, 20_000)
VOCABULARY = 5_000
BODY_WORDS = 40
TAGS = 30
SEARCHES = 300
BROWSES = 200
PINS = 3

_INSERT_SQL = """
INSERT INTO archive_archiveentry (id, user_id, slug, title, tags, body, created_at, updated_at)
SELECT gen_random_uuid(), %(user)s, 'entry-' || g,
       array_to_string(ARRAY(
           SELECT (%(words)s::text[])[1 + floor(random() * %(vocabulary)s)::int]
           FROM generate_series(1, 3) WHERE g IS NOT NULL), ' '),
       ARRAY['tag' || (g %% %(tags)s), 'tag' || ((g * 7 + 3) %% %(tags)s)],
       array_to_string(ARRAY(
           SELECT (%(words)s::text[])[1 + floor(random() * %(vocabulary)s)::int]
           FROM generate_series(1, %(body_words)s) WHERE g IS NOT NULL), ' '),
       now() - g * interval '1 second', now() - g * interval '1 second'
FROM generate_series(1, %(count)s) AS g
"""


def _words() -> list[str]:
    """Pronounceable made-up words (consonant-vowel syllables): distinct after stemming."""
    rng = random.Random(14)
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        syllables = rng.randint(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


def _world(words: list[str]) -> Any:
    from django.db import connection

    from accounts.models import User

    main = User.objects.create_user("archivist@example.com", "x" * 12, name="Archivist")
    others = [
        User.objects.create_user(f"other{n}@example.com", "x" * 12)
        for n in range(len(ENTRIES_OTHERS))
    ]
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for user, count in [(main, ENTRIES_MAIN), *zip(others, ENTRIES_OTHERS, strict=True)]:
            cursor.execute(
                _INSERT_SQL,
                {
                    "user": user.id, "words": words, "vocabulary": VOCABULARY, "tags": TAGS,
                    "body_words": BODY_WORDS, "count": count,
                },
            )  # fmt: skip
        cursor.execute("ANALYZE archive_archiveentry")
    total = ENTRIES_MAIN + sum(ENTRIES_OTHERS)
    comment(f"{total:,} entries inserted in {time.perf_counter() - began:.0f} s")
    return main


def _searches(words: list[str]) -> list[dict[str, Any]]:
    rng = random.Random(7)
    searches: list[dict[str, Any]] = []
    for index in range(SEARCHES // 2):
        first, second = rng.sample(words, 2)
        kind = index % 6
        if kind == 0:
            searches.append({"kind": "word", "query": first})
        elif kind == 1:
            searches.append({"kind": "two words", "query": f"{first} {second}"})
        elif kind == 2:
            searches.append({"kind": "phrase", "query": f'"{first} {second}"'})
        elif kind == 3:
            searches.append({"kind": "excluded", "query": f"{first} -{second}"})
        elif kind == 4:
            tag = f"tag{rng.randrange(TAGS)}"
            searches.append({"kind": "tag any", "query": first, "tags": [tag]})
        else:
            tags = [f"tag{rng.randrange(TAGS)}", f"tag{rng.randrange(TAGS)}"]
            searches.append({"kind": "tags all", "query": first, "tags": tags, "tags_mode": "all"})
    return searches


def _browses() -> list[dict[str, Any]]:
    rng = random.Random(9)
    browses: list[dict[str, Any]] = []
    for index in range(BROWSES // 2):
        kind = index % 3
        if kind == 0:
            browses.append({})
        elif kind == 1:
            browses.append({"tags": [f"tag{rng.randrange(TAGS)}"]})
        else:
            browses.append({"tags": ["tag1", "tag8"], "tags_mode": "all"})
    return browses


def _timed(user: Any, searches: list[dict[str, Any]]) -> list[float]:
    """Seconds of each search: its first page, then the page after its cursor (when any)."""
    from archive.selectors import entries_search

    seconds: list[float] = []
    for described in searches:
        search = {key: value for key, value in described.items() if key != "kind"}
        began = time.perf_counter()
        page = entries_search(user=user, **search)
        seconds.append(time.perf_counter() - began)
        if page.next_cursor is not None:
            began = time.perf_counter()
            entries_search(user=user, after=page.next_cursor, **search)
            seconds.append(time.perf_counter() - began)
    return seconds


def _search_figures(user: Any, words: list[str]) -> None:
    _timed(user, _searches(words)[:20])  # the connection, plans and the indexes' pages
    searches = _searches(words)
    searched = _timed(user, searches)
    browsed = _timed(user, _browses())
    ms = 1000
    comment(f"{len(searched)} searches and {len(browsed)} browses (first pages and next ones)")
    for kind in ("word", "two words", "phrase", "excluded", "tag any", "tags all"):
        alike = [search for search in searches if search["kind"] == kind]
        comment(f"{kind}: p95 {p95(_timed(user, alike)) * ms:.1f} ms")
    report("archive_search_median", statistics.median(searched) * ms, "ms")
    search_p95 = p95(searched) * ms
    report("archive_search_p95", search_p95, "ms", "<= 30 ms", search_p95 <= 30)
    report("archive_browse_p95", p95(browsed) * ms, "ms")


def _answered(chat_id: uuid.UUID | None = None) -> None:
    """Wait until no answer is being generated (the generation loop is in this process)."""
    from chats.models import Message

    deadline = time.monotonic() + 30
    while Message.objects.filter(status=Message.Status.STREAMING).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("an answer is still streaming after 30 s")
        time.sleep(0.02)


def _send_statements(client: Any, chat_id: uuid.UUID | None, **extra: Any) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chats.models import Chat
    from tests.helpers import FAKE_MODEL_ID

    data: dict[str, Any] = {"text": "hi", "model": FAKE_MODEL_ID, **extra}
    if chat_id is not None:
        data["version"] = str(Chat.objects.values_list("tree_version", flat=True).get(id=chat_id))
    url = f"/c/{chat_id}/send" if chat_id else "/c/send"
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, data, headers={"HX-Request": "true"})
    if response.status_code != 200:
        raise RuntimeError(f"a send answered {response.status_code}: {response.content[:300]!r}")
    _answered()
    return len(captured.captured_queries)


def _send_figures(user: Any) -> None:
    from django.test import Client

    from archive.models import ArchiveEntry
    from archive.services import chat_pin_add
    from chats.models import Chat

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    pinned = list(ArchiveEntry.objects.filter(user=user).values_list("id", flat=True)[:PINS])
    staged = {"pin": [str(entry_id) for entry_id in pinned]}
    _send_statements(client, None)  # fills this process's caches, as a server's are
    new_without = _send_statements(client, None)
    new_with = _send_statements(client, None, **staged)
    bare = Chat.objects.filter(user=user, pins__isnull=True).order_by("-created_at").first()
    pins_chat = Chat.objects.create(user=user, title="Pinned")
    assert bare is not None
    _send_statements(client, pins_chat.id)  # its first turn: a follow-up needs one before it
    for entry_id in pinned:
        chat_pin_add(user_id=user.id, chat_id=pins_chat.id, entry_id=entry_id)
    without = _send_statements(client, bare.id)
    with_pins = _send_statements(client, pins_chat.id)
    comment("statements of one htmx send (test client, in process, BEGIN/COMMIT included)")
    report("send_statements_without_pins", without, "statements")
    report(
        "send_statements_with_pins", with_pins, "statements", "+1 at most",
        with_pins <= without + 1, f"({PINS} pinned entries)",
    )  # fmt: skip
    report("new_chat_statements_without_pins", new_without, "statements")
    report(
        "new_chat_statements_with_pins", new_with, "statements", "+1 at most",
        new_with <= new_without + 1, f"({PINS} entries staged on the new chat's page)",
    )  # fmt: skip


def _generation_loop_quiet() -> None:
    """Close the in-process generation loop's HTTP sessions (left open, they warn at exit)."""
    import asyncio

    from chats.worker import _worker
    from models_registry.llm import llm_close

    loop = _worker.loop
    if loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(llm_close(), loop).result(30)


def body(setup: Setup) -> None:
    words = _words()
    user = _world(words)
    _search_figures(user, words)
    _send_figures(user)
    _generation_loop_quiet()


if __name__ == "__main__":
    sys.exit(bench_main(body, prefix="vero_bench_archive", fake_bucket=1_000_000))
