"""Database helpers for hot and long-lived code paths (sends, streams, the generation loop)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field, Model


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
    model = type(instances[0])
    fields = _insert_fields(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for instance in instances:
        if instance.pk is None:
            raise ValueError("instances_insert needs primary keys set beforehand")
        params += [
            field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
        ]
        instance._state.adding = False
        instance._state.db = connection.alias
    columns = ", ".join(connection.ops.quote_name(field.column or "") for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    rows = ", ".join([row] * len(instances))
    # Only quoted identifiers from the model's metadata and placeholders go into the text.
    sql = f"INSERT INTO {table} ({columns}) VALUES {rows}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@cache
def _insert_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    return tuple(model._meta.concrete_fields)
