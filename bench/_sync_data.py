"""The dataset of bench_sync.py: one user with 10,000 chats of 20 messages and one of 10,000.

Why a module of its own: the sync's figures are only meaningful on a user whose chats look like
the app's (one branch each, parent links, selections, stored HTML for answers, the database's
stamps in the past), built fast enough to run on every `make bench`: the chats by the ORM (so
columns the app adds later get their defaults), their branches and messages by set-based SQL,
checked against their definition before anything is measured.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

CHATS = 10_000
PER_CHAT = 20
LONG = 10_000
MODEL_ID = "fake:fake-model"
LONG_TITLE = "The long chat"

_LOREM = (
    "A cache that is current on every device must learn what changed without reading what "
    "did not: each chat carries the database's stamp of its last change, each message its "
    "own, and a sync asks only for the stamps after the one it kept. Deleted rows leave a "
    "tombstone for a month, so a device that slept through the deletion still hears of it. "
)

# Chat k (1-based) was created k minutes after the epoch and last changed 20 s later; its
# messages are 1 ms apart from its creation. The long chat is the newest.
_SPREAD_SQL = """
UPDATE chats_chat c
SET created_at = %(epoch)s::timestamptz + s.n * interval '1 minute',
    updated_at = %(epoch)s::timestamptz + s.n * interval '1 minute' + interval '20 seconds',
    root_message_index = 0
FROM (SELECT id, row_number() OVER (ORDER BY title = %(long)s, id) AS n
      FROM chats_chat WHERE user_id = %(user)s) s
WHERE c.id = s.id
"""

_BRANCHES_SQL = """
INSERT INTO chats_branch (chat_id, parent_branch_id, fork_message_id, path, created_at)
SELECT id, NULL, NULL, '0000'::ltree, created_at FROM chats_chat WHERE user_id = %(user)s
"""

# Questions of ~110 characters, answers of ~380 with their HTML: ids derived from (chat, seq).
_MESSAGES_SQL = """
INSERT INTO chats_message (
    id, chat_id, branch_id, seq, parent_id, role, parts, model_id, status, error, usage,
    selected_child_index, html, stream_seq, heartbeat_at, generator, created_at, updated_at
)
SELECT md5(c.id::text || ':' || g)::uuid, c.id, b.id, g,
       CASE WHEN g > 0 THEN md5(c.id::text || ':' || (g - 1))::uuid END,
       CASE WHEN g %% 2 = 0 THEN 'user' ELSE 'assistant' END,
       jsonb_build_array(jsonb_build_object('type', 'text', 'text', t.body)),
       CASE WHEN g %% 2 = 0 THEN '' ELSE %(model)s END, 'complete', '', NULL,
       CASE WHEN g < n.count - 1 THEN 0 END,
       CASE WHEN g %% 2 = 0 THEN '' ELSE '<p>' || t.body || '</p>' END,
       0, NULL, NULL,
       c.created_at + g * interval '1 millisecond', c.created_at + g * interval '1 millisecond'
FROM chats_chat c
JOIN chats_branch b ON b.chat_id = c.id
CROSS JOIN LATERAL (SELECT CASE WHEN c.title = %(long)s THEN %(long_count)s
                                ELSE %(per_chat)s END AS count) n
CROSS JOIN LATERAL generate_series(0, n.count - 1) g
CROSS JOIN LATERAL (
    SELECT CASE WHEN g %% 2 = 0
                THEN 'Question ' || g || ': ' || substr(%(lorem)s, 1 + (g * 37) %% 200, 100)
                ELSE 'Answer ' || g || ': ' || substr(%(lorem)s, 1 + (g * 53) %% 300, 370)
           END AS body
) t
WHERE c.user_id = %(user)s
"""

_CHECK_SQL = """
SELECT count(DISTINCT c.id), count(m.id),
       count(m.id) FILTER (WHERE c.title = %(long)s),
       count(m.id) FILTER (WHERE m.role = 'assistant' AND m.html = ''),
       count(m.id) FILTER (WHERE m.seq > 0 AND m.parent_id IS NULL),
       max(m.updated_at) < now() - interval '1 day'
FROM chats_chat c JOIN chats_message m ON m.chat_id = c.id
WHERE c.user_id = %(user)s
"""


@dataclass(frozen=True)
class SyncWorld:
    user_id: uuid.UUID
    long_chat: uuid.UUID
    chats: int  # in all, the long one included
    messages: int


def world_build(conninfo: str) -> SyncWorld:
    """Build the user and their chats; refuse to go on when the data is not as defined."""
    from django.db import connection

    from accounts.models import User
    from chats.models import Chat

    user = User.objects.create_user(email="sync-bench@example.com")
    titles = [f"Chat {n}" for n in range(CHATS)] + [LONG_TITLE]
    Chat.objects.bulk_create(
        [Chat(user=user, title=title, settings={"model": MODEL_ID}) for title in titles],
        batch_size=2_000,
    )
    long_chat = Chat.objects.get(user=user, title=LONG_TITLE).id
    connection.close()
    params: dict[str, Any] = {
        "user": user.id, "long": LONG_TITLE, "long_count": LONG, "per_chat": PER_CHAT,
        "model": MODEL_ID, "lorem": _LOREM * 2, "epoch": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # History keeps its own stamps (the trigger of chats migration 0006 would stamp now()).
        conn.execute("SET vero.stamps = 'kept'")
        for statement in (_SPREAD_SQL, _BRANCHES_SQL, _MESSAGES_SQL):
            conn.execute(statement, params)
        for table in ("chats_chat", "chats_branch", "chats_message"):
            conn.execute(f"VACUUM ANALYZE {table}")
        row = conn.execute(_CHECK_SQL, params).fetchone()
    expected = (CHATS + 1, CHATS * PER_CHAT + LONG, LONG, 0, 0, True)
    if row != expected:
        raise RuntimeError(f"dataset is {row}, not {expected}")
    return SyncWorld(user_id=user.id, long_chat=long_chat, chats=row[0], messages=row[1])
