"""The streaming bench's data: prepared chats in bulk SQL, and one send counted in-process.

Why a module of its own: the figures are only comparable if every phase draws on the same
chats (a 10,000-message one, thousands of one-message ones) and the statements and writes of
a send are counted the same way, around Django's test client in this process.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from _client import MODEL, STREAM_URL

# The tables whose row writes count as an answer's (db_writes_*).
WRITE_TABLES = ("chats_message", "chats_tokenusage", "chats_chat")

SHORT_CHATS_SQL = """
WITH c AS (
    INSERT INTO chats_chat (id, user_id, title, created_at, updated_at, settings,
                            root_message_index, fork_depth, tree_version)
    SELECT gen_random_uuid(), %(user)s, 'bench ' || g, now(), now(), %(settings)s, 0, 0, 0
    FROM generate_series(1, %(count)s) g
    RETURNING id
), b AS (
    INSERT INTO chats_branch (path, created_at, chat_id)
    SELECT '0000', now(), id FROM c
    RETURNING id, chat_id
)
INSERT INTO chats_message (id, seq, role, parts, model_id, status, error, html, stream_seq,
                           created_at, updated_at, branch_id, chat_id)
SELECT gen_random_uuid(), 0, 'user', '[{"type": "text", "text": "hello"}]', '', 'complete',
       '', '', 0, now(), now(), b.id, b.chat_id
FROM b
RETURNING chat_id, id
"""

LONG_CHAT_SQL = """
INSERT INTO chats_message (id, seq, role, parts, model_id, status, error, html, stream_seq,
                           created_at, updated_at, branch_id, chat_id, parent_id,
                           selected_child_index)
SELECT md5(%(chat)s || ':' || g)::uuid, g,
       CASE WHEN g %% 2 = 0 THEN 'user' ELSE 'assistant' END,
       jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'message ' || g)),
       CASE WHEN g %% 2 = 0 THEN '' ELSE %(model)s END,
       'complete', '', '', 0,
       now() - (%(count)s - g) * interval '1 millisecond',
       now() - (%(count)s - g) * interval '1 millisecond',
       %(branch)s, %(chat)s::uuid,
       CASE WHEN g = 0 THEN NULL ELSE md5(%(chat)s || ':' || (g - 1))::uuid END,
       CASE WHEN g < %(count)s - 1 THEN 0 END
FROM generate_series(0, %(count)s - 1) g
"""


def chats_short_create(
    conn: psycopg.Connection[Any], user_id: str, count: int
) -> list[tuple[str, str]]:
    from psycopg.types.json import Jsonb

    rows = conn.execute(
        SHORT_CHATS_SQL, {"user": user_id, "count": count, "settings": Jsonb({"model": MODEL})}
    ).fetchall()
    return [(str(chat), str(message)) for chat, message in rows]


def chat_long_create(conn: psycopg.Connection[Any], user_id: str, count: int) -> tuple[str, str]:
    from psycopg.types.json import Jsonb

    chat = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO chats_chat (id, user_id, title, created_at, updated_at, settings, "
        "root_message_index, fork_depth, tree_version) "
        "VALUES (%s, %s, 'bench long', now(), now(), %s, 0, 0, 0)",
        [chat, user_id, Jsonb({"model": MODEL})],
    )
    row = conn.execute(
        "INSERT INTO chats_branch (path, created_at, chat_id) VALUES ('0000', now(), %s) "
        "RETURNING id",
        [chat],
    ).fetchone()
    assert row is not None
    conn.execute(LONG_CHAT_SQL, {"chat": chat, "branch": row[0], "count": count, "model": MODEL})
    last = conn.execute(
        "SELECT id FROM chats_message WHERE chat_id = %s AND seq = %s", [chat, count - 1]
    ).fetchone()
    assert last is not None
    return chat, str(last[0])


def long_context(count: int) -> list[dict[str, str]]:
    """What the server sends the provider for the long chat: the newest CONTEXT_MAX_MESSAGES
    messages of the route, the new question last."""
    from django.conf import settings

    kept = settings.CONTEXT_MAX_MESSAGES - 1
    return [
        {"role": "user" if index % 2 == 0 else "assistant", "content": f"message {index}"}
        for index in range(max(0, count - kept), count)
    ] + [{"role": "user", "content": "hi"}]


# -- statements on the send path (in this process) ----------------------------------------------


def _shown_version(chat_id: str) -> dict[str, str]:
    """What the chat's page posts with a send: the tree version it shows (the current one)."""
    from chats.models import Chat

    version = Chat.objects.filter(id=chat_id).values_list("tree_version", flat=True).get()
    return {"version": str(version)}


def send_statements(user_id: str, chat_id: str, parent_id: str | None) -> tuple[list[str], str]:
    """The statements of one htmx send and its answer's id; no chat_id: a new chat's send."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    from accounts.guests import guest_token_issue

    client = DjangoClient(SERVER_NAME="127.0.0.1")
    client.cookies[settings.GUEST_COOKIE_NAME] = guest_token_issue(guest_id=uuid.UUID(user_id))
    url = f"/c/{chat_id}/send" if chat_id else "/c/send"
    data = {"text": "hi", "model": MODEL, **({"parent": parent_id} if parent_id else {})}
    if chat_id:
        data |= _shown_version(chat_id)
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, data, headers={"HX-Request": "true"})
    connection.close()
    body = response.content.decode()
    found = STREAM_URL.search(body)
    if response.status_code != 200 or found is None:
        raise RuntimeError(f"in-process send answered {response.status_code}: {body[:300]}")
    return [query["sql"] for query in captured.captured_queries], found.group(2)


def send_writes(user_id: str, chat_id: str, parent_id: str) -> int:
    """Rows one send writes to the counted tables: the send runs inside a transaction of this
    process, whose own statistics (pg_stat_xact_user_tables) are read before it commits."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.test import Client as DjangoClient

    from accounts.guests import guest_token_issue

    client = DjangoClient(SERVER_NAME="127.0.0.1")
    client.cookies[settings.GUEST_COOKIE_NAME] = guest_token_issue(guest_id=uuid.UUID(user_id))
    try:
        with transaction.atomic():
            response = client.post(
                f"/c/{chat_id}/send",
                {"text": "hi", "model": MODEL, "parent": parent_id, **_shown_version(chat_id)},
                headers={"HX-Request": "true"},
            )
            if response.status_code != 200:
                raise RuntimeError(f"in-process send answered {response.status_code}")
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
                    " FROM pg_stat_xact_user_tables WHERE relname = ANY(%s)",
                    [list(WRITE_TABLES)],
                )
                row = cursor.fetchone()
        assert row is not None
        return int(row[0])
    finally:
        connection.close()


def user_model_resolve(user_id: str) -> Any:
    """The fake model resolved for the guest, as the server resolves it for a send."""
    from django.db import connection

    from accounts.models import User
    from models_registry.resolver import resolve

    try:
        return resolve(User.objects.get(id=user_id), MODEL)
    finally:
        connection.close()
