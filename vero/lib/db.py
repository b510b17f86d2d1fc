"""Database helpers shared by long-lived code paths (streams, the generation loop)."""

from __future__ import annotations

from django.db import connection


def connection_release() -> None:
    """Give this thread's connection back (to the pool, or close it) unless a transaction holds it.

    Long-lived work (a stream, an answer being generated) must not keep a connection between
    its short database visits. Inside an atomic block (a test's transaction) it stays.
    """
    if not connection.in_atomic_block:
        connection.close()
