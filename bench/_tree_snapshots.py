"""Snapshots of a bench chat: put it back as it was after an operation changed it.

Why a module of its own: bench_tree.py measures each write (select, edit, delete, append) on
the chat as built, so after every run the chat's rows go back to what they were; a restore
writes only the rows the operation touched, so it stays cheap on a 100,000-message chat.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass(frozen=True)
class _Table:
    name: str
    key: str
    where: str  # the column naming the chat


def _chat_tables(conn: psycopg.Connection[Any]) -> list[_Table]:
    """chats_* tables holding a chat's rows: those with a chat_id column, and the chat itself.

    Found in the catalog, so tables the app adds later are snapshotted too."""
    rows = conn.execute(
        """
        SELECT c.relname, a.attname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
        WHERE c.relkind = 'r' AND c.relname LIKE 'chats\\_%%'
          AND (c.relname = 'chats_chat' OR EXISTS (
              SELECT 1 FROM pg_attribute x WHERE x.attrelid = c.oid AND x.attname = 'chat_id'
                AND NOT x.attisdropped))
        ORDER BY c.relname
        """
    ).fetchall()
    return [_Table(name, key, "id" if name == "chats_chat" else "chat_id") for name, key in rows]


@dataclass
class Snapshot:
    chat_id: uuid.UUID
    tables: list[_Table]
    number: int
    columns: dict[str, list[str]] = field(default_factory=dict)

    def copy(self, table: _Table) -> str:
        return f"bench_snap_{self.number}_{table.name}"


_snapshots = 0


def snapshot_take(conn: psycopg.Connection[Any], chat_id: uuid.UUID) -> Snapshot:
    """Copy the chat's rows, each with the xmin it has now: a row whose xmin differs later was
    rewritten (updated, or deleted and restored), so a restore compares one number per row."""
    global _snapshots
    _snapshots += 1
    snap = Snapshot(chat_id=chat_id, tables=_chat_tables(conn), number=_snapshots)
    for table in snap.tables:
        snap.columns[table.name] = [
            row[0]
            for row in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                [table.name],
            ).fetchall()
        ]
        conn.execute(
            f"CREATE TABLE {snap.copy(table)} AS SELECT t.xmin::text AS bench_xmin, t.* "
            f"FROM {table.name} t WHERE t.{table.where} = %s",
            [str(chat_id)],
        )
        conn.execute(f"CREATE UNIQUE INDEX ON {snap.copy(table)} ({table.key})")
        conn.execute(f"ANALYZE {snap.copy(table)}")
    return snap


def snapshot_restore(conn: psycopg.Connection[Any], snap: Snapshot) -> int:
    """Put the chat's rows back as they were; returns the rows that had to be written.

    In one transaction with the deferrable constraints deferred: rows the operation added
    are deleted, rewritten rows get their old values, deleted rows come back with their ids;
    then the copy records the restored rows' new xmin."""
    changed = 0
    chat = str(snap.chat_id)
    with conn.transaction():
        conn.execute("SET CONSTRAINTS ALL DEFERRED")
        for table in snap.tables:
            copy, key, where = snap.copy(table), table.key, table.where
            changed += conn.execute(
                f"DELETE FROM {table.name} t WHERE t.{where} = %s AND NOT EXISTS "
                f"(SELECT 1 FROM {copy} s WHERE s.{key} = t.{key})",
                [chat],
            ).rowcount
        for table in snap.tables:
            copy, key, where = snap.copy(table), table.key, table.where
            columns = snap.columns[table.name]
            names = ", ".join(columns)
            values = ", ".join(f"s.{column}" for column in columns)
            changed += conn.execute(
                f"UPDATE {table.name} t SET ({names}) = ROW({values}) FROM {copy} s "
                f"WHERE t.{key} = s.{key} AND t.{where} = %s AND t.xmin::text <> s.bench_xmin",
                [chat],
            ).rowcount
            changed += conn.execute(
                f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {copy} s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table.name} t WHERE t.{key} = s.{key})"
            ).rowcount
            conn.execute(
                f"UPDATE {copy} s SET bench_xmin = t.xmin::text FROM {table.name} t "
                f"WHERE t.{key} = s.{key} AND t.{where} = %s AND t.xmin::text <> s.bench_xmin",
                [chat],
            )
    return changed
