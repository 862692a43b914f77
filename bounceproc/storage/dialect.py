"""The dialect's own INSERT (the one with ON CONFLICT), for the two back ends bounceproc runs on.

Adapter layer. `conflict_insert(conn, table)` is `insert(table)` of PostgreSQL or of SQLite,
chosen by the connection (or engine), so callers can add `.on_conflict_do_nothing()` or
`.on_conflict_do_update()` without naming a dialect themselves.
"""
from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def conflict_insert(conn, table):
    """INSERT into `table` with the ON CONFLICT clauses of `conn`'s dialect."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
