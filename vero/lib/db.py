"""Database helpers for hot and long-lived code paths (sends, streams, the generation loop)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, Field, Func, Model


def connection_release() -> None:
    """Give this thread's connection back (to the pool, or close it) unless a transaction holds it.

    Long-lived work (a stream, an answer being generated) must not keep a connection between
    its short database visits. Inside an atomic block (a test's transaction) it stays.
    """
    if not connection.in_atomic_block:
        connection.close()


def instances_insert(instances: Sequence[Model]) -> None:
    """Insert new instances of one model in a single `INSERT … VALUES` statement.

    What `bulk_create` does for a few rows (every concrete field prepared as for `save`,
    `auto_now` stamps included) at half its cost: on PostgreSQL, Django sends several rows as
    typed arrays through `UNNEST`, whose building takes longer than the insert itself. Primary
    keys must be set beforehand (UUIDs); no signals are sent, as with `bulk_create`.
    """
    if not instances:
        return
    sql, params = instances_insert_sql(instances)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def instances_insert_sql(
    instances: Sequence[Model], *, expressions: Mapping[str, str] | None = None
) -> tuple[str, list[Any]]:
    """The `INSERT … VALUES` statement of `instances_insert` and its parameters, unexecuted.

    For a writer that folds several inserts into one statement (as `WITH … AS (INSERT …)`).
    `expressions` gives some columns SQL in place of the instances' values, the same in every
    row: `DEFAULT` for a serial key, `(SELECT id FROM branch)` for a key inserted beside it.
    """
    expressions = expressions or {}
    model = type(instances[0])
    fields = _insert_fields(model)
    row = "(" + ", ".join(expressions.get(field.column or "", "%s") for field in fields) + ")"
    valued = [field for field in fields if field.column not in expressions]
    params: list[Any] = []
    for instance in instances:
        if instance.pk is None and model._meta.pk.column not in expressions:
            raise ValueError("instances_insert needs primary keys set beforehand")
        params += [
            field.get_db_prep_save(field.pre_save(instance, True), connection) for field in valued
        ]
        instance._state.adding = False
        instance._state.db = connection.alias
    columns = ", ".join(connection.ops.quote_name(field.column or "") for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    rows = ", ".join([row] * len(instances))
    # Only quoted identifiers from the model's metadata, the caller's SQL and placeholders go
    # into the text.
    return f"INSERT INTO {table} ({columns}) VALUES {rows}", params  # noqa: S608


@cache
def _insert_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    return tuple(model._meta.concrete_fields)


class TransactionNow(Func):
    """PostgreSQL's `now()`: the writing transaction's start, the same for all its rows.

    Django's `Now()` is `STATEMENT_TIMESTAMP()` on PostgreSQL, which differs between the
    statements of one write; the cache sync wants one stamp per write (docs/realtime.md).
    """

    template = "now()"
    output_field = DateTimeField()


@contextmanager
def stamps_kept() -> Iterator[None]:
    """Inside: chats and messages keep the `updated_at` their writer gives them.

    Every other write is stamped with the database's clock by a trigger (chats migration
    0006); tests and benches that load history (a chat last active a week ago) need their own.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL vero.stamps = 'kept'")
        yield
