"""Reading durable-intake rows for processing (locked; payload fetched in binary on PostgreSQL),
and keeping what could not be read in the quarantine.

Adapter layer (SQLAlchemy Core + psycopg). An acct batch is a ~2 MB bytea; fetched through the
text protocol PostgreSQL hex-encodes it and the client decodes it again, a measurable share of a
worker's time. On PostgreSQL rows are therefore read with a binary psycopg cursor; elsewhere
(SQLite) with a plain SELECT. Rows are read-only records with the intake table's column names.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from psycopg.rows import namedtuple_row
from sqlalchemy import select

from bounceproc.storage.bulk import pg_cursor
from bounceproc.storage.dialect import conflict_insert
from bounceproc.domain.storable import escape_unstorable
from bounceproc.storage.tables import intake, quarantine

_COLS = tuple(c.name for c in intake.columns)
_PG_SELECT = (f"SELECT {', '.join(_COLS)} FROM intake WHERE id = ANY(%s) AND state = 'pending' "
              "ORDER BY id FOR UPDATE SKIP LOCKED")


def pending_rows(conn, ids: Sequence[int]) -> list:
    """The rows among `ids` still pending, in id order. On PostgreSQL they are locked (SKIP LOCKED:
    a row another worker holds is left to it)."""
    ids = sorted({int(i) for i in ids})
    if not ids:
        return []
    if conn.dialect.name == "postgresql":
        cur = pg_cursor(conn)
        try:
            cur.row_factory = namedtuple_row
            cur.execute(_PG_SELECT, [ids], binary=True, prepare=True)
            return list(cur.fetchall())
        finally:
            cur.close()
    return list(conn.execute(select(intake).where(intake.c.id.in_(ids), intake.c.state == "pending")
                             .order_by(intake.c.id)).all())


def pending_kinds(conn, ids: Sequence[int]) -> dict[int, str]:
    """id -> kind of the rows among `ids` still pending (no lock, no payload)."""
    ids = sorted({int(i) for i in ids})
    if not ids:
        return {}
    return {r.id: r.kind for r in conn.execute(
        select(intake.c.id, intake.c.kind).where(intake.c.id.in_(ids), intake.c.state == "pending"))}


def quarantine_key(origin: str, line_no: int, raw: str) -> str:
    """What makes two quarantine entries the same: source, line and raw text, as stored."""
    return hashlib.sha256(f"{origin}\n{line_no}\n{raw}".encode("utf-8", "surrogatepass")).hexdigest()


def insert_quarantine(conn, intake_id: int, origin: str, items: Iterable[tuple[int, str, str]],
                      header: str = "") -> None:
    """Keep unreadable input of one intake row in the quarantine: (line_no, reason, raw) per item
    (line 0 for a whole message), with the acct `header` in effect (for replay). Idempotent per
    (intake row, line), and per (origin, line, raw): the same file imported again (`import
    --restart`, or the same lines piped twice) adds no second entry. Long texts are cut, and what
    no text column can store (NUL, lone surrogates) is escaped, so the quarantine never refuses."""
    now = datetime.now(timezone.utc)
    origin = escape_unstorable(origin)
    rows = []
    for line_no, reason, raw in items:
        raw = escape_unstorable(raw[:8000])
        rows.append({"intake_id": intake_id, "origin": origin, "line_no": line_no,
                     "reason": escape_unstorable(reason[:2000]), "raw": raw, "created_at": now,
                     "header": escape_unstorable(header), "raw_key": quarantine_key(origin, line_no, raw)})
    if rows:      # no conflict target: either unique index makes the row a repeat
        conn.execute(conflict_insert(conn, quarantine).on_conflict_do_nothing(), rows)
