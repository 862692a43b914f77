"""The two hot reads of the API on PostgreSQL, without a thread hop: one address, and bulk check.

Adapter layer (psycopg async). A sending application calls these before every send, so they skip
SQLAlchemy and the threadpool: a small pool of autocommit async connections on the event loop,
statements prepared by the server after a few uses, and the bulk check as one `= ANY(array)`
lookup on the (address, scope) unique index. Other databases (the embedded SQLite) use the
SQLAlchemy path in suppressions.py; both return the same column names.
"""
from __future__ import annotations

import asyncio
from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

POOL_SIZE = 8
_COLUMNS = ("id, address, scope, reason, origin, category, bounce_reason, rule, source, event_key, status,"
            " diagnostic, note, created_at, updated_at, expires_at")
GET_ONE = (f"SELECT {_COLUMNS} FROM suppressions WHERE address = %s AND scope = %s"
           " AND (expires_at IS NULL OR expires_at > %s)")
# One round trip for the entry and its history (newest first, at most 100 changes).
GET_WITH_HISTORY = (
    f"SELECT {_COLUMNS}, (SELECT json_agg(h) FROM (SELECT action, scope, reason, actor, why, event_key,"
    " evidence, at FROM suppression_history WHERE address = s.address AND scope = s.scope"
    " ORDER BY at DESC, id DESC LIMIT 100) h) AS history"
    " FROM suppressions s WHERE address = %s AND scope = %s AND (expires_at IS NULL OR expires_at > %s)")
CHECK = ("SELECT address, scope, reason FROM suppressions WHERE address = ANY(%s) AND scope = ANY(%s)"
         " AND (expires_at IS NULL OR expires_at > %s)")


def conninfo(sqlalchemy_url: str) -> str:
    """A libpq URL from a SQLAlchemy `postgresql+psycopg://` URL."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgReader:
    """Lazily opens up to POOL_SIZE connections on the running event loop."""

    def __init__(self, sqlalchemy_url: str, size: int = POOL_SIZE) -> None:
        self._conninfo = conninfo(sqlalchemy_url)
        self._size = size
        self._idle: asyncio.Queue | None = None
        self._opened = 0
        self._lock: asyncio.Lock | None = None

    async def _acquire(self) -> psycopg.AsyncConnection:
        if self._idle is None:
            self._idle, self._lock = asyncio.Queue(), asyncio.Lock()
        if self._idle.empty() and self._opened < self._size:
            async with self._lock:
                if self._opened < self._size:
                    self._opened += 1
                    try:
                        return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True,
                                                                     row_factory=dict_row)
                    except BaseException:
                        self._opened -= 1
                        raise
        return await self._idle.get()

    def _release(self, conn: psycopg.AsyncConnection, ok: bool) -> None:
        if ok and not conn.closed:
            self._idle.put_nowait(conn)
        else:
            self._opened -= 1

    async def _run(self, fn):
        conn = await self._acquire()
        ok = False
        try:
            result = await fn(conn)
            ok = True
            return result
        finally:
            if not ok:
                await conn.close()
            self._release(conn, ok)

    async def get_one(self, address: str, scope: str, now: datetime, history: bool):
        async def q(conn):
            if not history:
                return await (await conn.execute(GET_ONE, (address, scope, now))).fetchone(), []
            row = await (await conn.execute(GET_WITH_HISTORY, (address, scope, now))).fetchone()
            if row is None:
                return None, []
            hist = row.pop("history") or []
            for h in hist:
                h["at"] = datetime.fromisoformat(h["at"])
            return row, hist
        return await self._run(q)

    async def check(self, addresses: list[str], scopes: list[str], now: datetime) -> list[dict]:
        async def q(conn):
            return await (await conn.execute(CHECK, (addresses, scopes, now))).fetchall()
        return await self._run(q)

    async def aclose(self) -> None:
        """Close the idle connections (on application shutdown)."""
        while self._idle is not None and not self._idle.empty():
            conn = self._idle.get_nowait()
            self._opened -= 1
            await conn.close()
