"""Fast multi-row INSERT ... ON CONFLICT for batches, in a fixed number of statements.

Adapter layer (SQLAlchemy Core + psycopg). On PostgreSQL a batch is sent as one statement whose
parameters are one array per column (`INSERT ... SELECT * FROM unnest(%s::text[], ...)`): the SQL
text is constant, so psycopg prepares it once, and no per-row placeholders are parsed — about
20x faster than multi-VALUES inserts for thousands of rows. Elsewhere (SQLite) it falls back to
SQLAlchemy's executemany, which is fast there.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, LargeBinary, Table

from bounceproc.storage import json_text
from bounceproc.storage.dialect import conflict_insert


def _pg_type(col) -> str:
    t = col.type
    t = getattr(t, "impl", t)
    if isinstance(t, Boolean):
        return "boolean"
    if isinstance(t, (BigInteger, Integer)):
        return "bigint"
    if isinstance(t, Float):
        return "float8"
    if isinstance(t, DateTime):
        return "timestamptz"
    if isinstance(t, JSON):
        return "json"
    if isinstance(t, LargeBinary):
        return "bytea"
    return "text"


@lru_cache(maxsize=64)
def _pg_sql(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...], update: tuple[str, ...],
            increment: tuple[str, ...], returning: tuple[str, ...], extra_returning: str = "") -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    casts = ", ".join(f"%b::{'text' if _pg_type(table.c[c]) == 'json' else _pg_type(table.c[c])}[]"
                      for c in columns)
    select = ", ".join(f'"{c}"::json' if _pg_type(table.c[c]) == "json" else f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table.name}" ({cols}) SELECT {select} FROM unnest({casts}) AS t({cols})'
    if conflict:
        target = ", ".join(f'"{c}"' for c in conflict)
        # Insert in key order: concurrent transactions then lock conflicting keys in the same
        # order and wait for each other instead of deadlocking.
        sql += " ORDER BY " + ", ".join(f't."{c}"' for c in conflict)
        sets = [f'"{c}" = EXCLUDED."{c}"' for c in update]
        sets += [f'"{c}" = "{table.name}"."{c}" + EXCLUDED."{c}"' for c in increment]
        sql += f" ON CONFLICT ({target}) " + (f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING")
    if returning:
        sql += " RETURNING " + ", ".join([f'"{c}"' for c in returning] + ([extra_returning] if extra_returning else []))
    return sql


def pg_cursor(conn):
    """The psycopg cursor under a SQLAlchemy connection, inside its transaction."""
    return conn.connection.driver_connection.cursor()


def bulk_insert(conn, table: Table, rows: Sequence[dict], *, conflict: Sequence[str] = (),
                update: Sequence[str] = (), increment: Sequence[str] = (),
                returning: Sequence[str] = (), pg_extra_returning: str = "") -> list[tuple]:
    """Insert rows (all with the same keys). With `conflict` columns, conflicting rows are skipped,
    or updated (`update`: take the new value, `increment`: add it). Returns the `returning` columns
    of the rows actually inserted or updated (PostgreSQL: plus the SQL expression `pg_extra_returning`)."""
    if not rows:
        return []
    columns = tuple(rows[0].keys())
    if conn.dialect.name == "postgresql":
        sql = _pg_sql(table, columns, tuple(conflict), tuple(update), tuple(increment), tuple(returning),
                      pg_extra_returning)
        params = []
        for c in columns:
            values = [r[c] for r in rows]
            if _pg_type(table.c[c]) == "json":
                values = [None if v is None else json_text.dumps(v) for v in values]
            params.append(values)
        cur = pg_cursor(conn)
        try:
            cur.execute(sql, params, prepare=True)
            return [tuple(r) for r in cur.fetchall()] if returning else []
        finally:
            cur.close()
    stmt = conflict_insert(conn, table)
    if conflict:
        sets = {c: stmt.excluded[c] for c in update}
        sets.update({c: table.c[c] + stmt.excluded[c] for c in increment})
        stmt = (stmt.on_conflict_do_update(index_elements=list(conflict), set_=sets) if sets
                else stmt.on_conflict_do_nothing(index_elements=list(conflict)))
    out: list[tuple] = []
    if conflict:
        rows = sorted(rows, key=lambda r: tuple(r[c] for c in conflict))
    for i in range(0, len(rows), 500):
        part = rows[i:i + 500]
        if returning:
            out.extend(tuple(r) for r in conn.execute(stmt.returning(*(table.c[c] for c in returning)), part))
        else:
            conn.execute(stmt, part)
    return out
