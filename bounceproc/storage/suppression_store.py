"""Suppressions, their history, soft-bounce state, block counters and the webhook outbox (SQL side).

Adapter layer (SQLAlchemy Core). Batch operations for service.record_events; all writes go
through INSERT ... ON CONFLICT, never select-then-insert, so concurrent workers cannot create
duplicates.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from sqlalchemy import and_, delete, func, select, tuple_

from bounceproc.storage import json_text
from bounceproc.storage.api_tables import webhook_endpoints
from bounceproc.storage.bulk import bulk_insert, pg_cursor
from bounceproc.storage.tables import (
    block_counters, outbox, soft_state, suppression_counts, suppression_history, suppressions,
)

CHUNK = 900  # stays under SQLite's bound-parameter limit with room to spare


def _chunks(seq: Sequence, n: int = CHUNK):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _select_in(conn, table, key: str, values: list[str], cols: tuple[str, ...], lock: bool) -> list[tuple]:
    """Rows whose `key` is in `values`: one `= ANY(array)` statement on PostgreSQL, chunks elsewhere."""
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        # A join on unnest() is a hash join; `= ANY(array)` would compare every row with every value.
        sql = (f'SELECT {", ".join("t." + c for c in cols)} FROM "{table.name}" t '
               f'JOIN unnest(%b::text[]) AS k(v) ON t."{key}" = k.v'
               + (" ORDER BY 1 FOR UPDATE OF t" if lock else ""))
        cur = pg_cursor(conn)
        try:
            cur.execute(sql, [values], prepare=True)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()
    out: list[tuple] = []
    for part in _chunks(values):
        out.extend(tuple(r) for r in conn.execute(
            select(*(table.c[c] for c in cols)).where(table.c[key].in_(part))))
    return out


def load_soft_states(conn, addresses: Iterable[str], lock: bool = True) -> dict[str, str]:
    """address -> comma list of days, for the addresses that have soft-bounce state (locked on PostgreSQL)."""
    rows = _select_in(conn, soft_state, "address", sorted(set(addresses)), ("address", "days"), lock)
    return {a: d for a, d in rows}


def save_soft_states(conn, changed: dict[str, tuple[str, datetime, str]]) -> None:
    """changed: address -> (days, last_at, last_event_key); empty days deletes the row."""
    gone = [a for a, (days, _, _) in changed.items() if not days]
    if gone and conn.dialect.name == "postgresql":
        cur = pg_cursor(conn)
        try:
            cur.execute('DELETE FROM soft_state WHERE address = ANY(%b::text[])', [gone], prepare=True)
        finally:
            cur.close()
    else:
        for part in _chunks(gone):
            conn.execute(delete(soft_state).where(soft_state.c.address.in_(part)))
    rows = [{"address": a, "days": d, "count": len(d.split(",")), "last_at": t, "last_event_key": k}
            for a, (d, t, k) in changed.items() if d]
    bulk_insert(conn, soft_state, rows, conflict=("address",),
                update=("days", "count", "last_at", "last_event_key"))


def insert_suppressions(conn, rows: list[dict]) -> set[tuple[str, str]]:
    """Insert suppressions that do not exist yet (counted in suppression_counts); return the
    (address, scope) keys created."""
    created = bulk_insert(conn, suppressions, rows, conflict=("address", "scope"),
                          returning=("address", "scope", "reason"))
    count_suppressions(conn, Counter(reason for _, _, reason in created))
    return {(a, s) for a, s, _ in created}


def insert_history(conn, rows: list[dict]) -> None:
    bulk_insert(conn, suppression_history, rows)


_BLOCK_KEY = ("day", "recipient_domain", "vmta", "source_ip", "reason", "category")


def bump_block_counters(conn, counts: dict[tuple, tuple[int, datetime, str]]) -> set[tuple]:
    """counts: (day, domain, vmta, ip, reason, category) -> (n, last_at, diagnostic).
    Returns the keys that had no counter yet (first block of the day: worth an alert)."""
    if not counts:
        return set()
    rows = [{"day": k[0], "recipient_domain": k[1], "vmta": k[2], "source_ip": k[3], "reason": k[4],
             "category": k[5], "count": n, "last_at": t, "last_diagnostic": d[:1000]}
            for k, (n, t, d) in counts.items()]
    upsert = dict(conflict=_BLOCK_KEY, update=("last_at", "last_diagnostic"), increment=("count",))
    if conn.dialect.name == "postgresql":
        # xmax = 0 on a returned row means the upsert inserted it rather than updating it.
        out = bulk_insert(conn, block_counters, rows, returning=_BLOCK_KEY, pg_extra_returning="(xmax = 0)",
                          **upsert)
        return {tuple(r[:-1]) for r in out if r[-1]}
    keys = list(counts)
    cols = tuple(block_counters.c[c] for c in _BLOCK_KEY)
    known: set[tuple] = set()
    for part in _chunks(keys, 150):
        known.update(tuple(r) for r in conn.execute(select(*cols).where(tuple_(*cols).in_(part))))
    bulk_insert(conn, block_counters, rows, **upsert)
    return set(keys) - known


def new_webhook_id() -> str:
    """Standard Webhooks id: time-ordered and unique, no dots."""
    return "evt_%012x%s" % (int(time.time() * 1000), secrets.token_hex(8))


def webhook_id_for(event_key: str, type_: str) -> str:
    """Deterministic id for an outbox row caused by an event (a replay yields the same id).

    Time-prefixed like the event key it comes from (its first 8 hex digits are the event's time),
    so the outbox's unique index grows at its right edge instead of taking random inserts.
    """
    digest = hashlib.blake2b(f"{event_key}\x1f{type_}".encode(), digest_size=12).hexdigest()
    if len(event_key) == 32:
        return "evt_" + event_key[:8] + digest[:16]
    return "evt_" + digest


@lru_cache(maxsize=4096)
def _stamp(occurred_at: datetime) -> str:
    return occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def outbox_row(webhook_id: str, type_: str, occurred_at: datetime, data: dict, now: datetime) -> dict:
    body = {"type": type_, "timestamp": _stamp(occurred_at), "data": data}
    return {"webhook_id": webhook_id, "type": type_, "occurred_at": occurred_at, "created_at": now,
            "payload": json_text.dumps(body), "dispatched": False}


def webhook_subscribed(conn):
    """A predicate on webhook types: True for a type some enabled endpoint subscribes to now.

    Outbox rows are written only for such types: the fan-out would send the others to nobody
    (it delivers to the endpoints enabled when it runs), and an installation with no endpoint,
    or one that wants only complaints, would otherwise store an outbox row or two per bounce
    that is never sent.
    """
    types: set[str] = set()
    for (wanted,) in conn.execute(select(webhook_endpoints.c.event_types)
                                  .where(webhook_endpoints.c.enabled.is_(True))):
        if not wanted:                 # [] subscribes to every type
            return _every_type
        types.update(wanted)
    return frozenset(types).__contains__


def _every_type(type_: str) -> bool:
    return True


def insert_outbox(conn, rows: list[dict], subscribed=None) -> int:
    """Insert the outbox rows of subscribed types (`subscribed`: see webhook_subscribed; looked up
    when not given), skipping webhook_ids already there; returns how many were new."""
    if not rows:
        return 0
    subscribed = subscribed or webhook_subscribed(conn)
    rows = [r for r in rows if subscribed(r["type"])]
    return len(bulk_insert(conn, outbox, rows, conflict=("webhook_id",), returning=("id",)))


def get_suppression(conn, address: str, scope: str, lock: bool = False):
    """The suppression row, or None; `lock`: held until the transaction ends (PostgreSQL)."""
    stmt = select(suppressions).where(and_(suppressions.c.address == address, suppressions.c.scope == scope))
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def delete_suppressions(conn, ids: list[int]) -> dict[int, str]:
    """Delete suppressions by id; returns id -> reason of the rows this call deleted (a row that a
    concurrent transaction deleted first is not among them). Counted in suppression_counts."""
    deleted: dict[int, str] = {}
    for part in _chunks(ids):
        deleted.update((i, r) for i, r in conn.execute(
            suppressions.delete().where(suppressions.c.id.in_(part))
            .returning(suppressions.c.id, suppressions.c.reason)))
    count_suppressions(conn, {reason: -n for reason, n in Counter(deleted.values()).items()})
    return deleted


GROWTH_DAYS = 35       # days kept apart in suppression_counts (the dashboard charts 30)


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def count_suppressions(conn, changes: dict[str, int], day: str | None = None) -> None:
    """Record changes of the number of suppressions per reason (+ created, - deleted), on `day`
    (the UTC date; today by default)."""
    day = _today() if day is None else day
    rows = [{"reason": r, "n": n, "day": day} for r, n in sorted(changes.items()) if n]
    if rows:
        conn.execute(suppression_counts.insert(), rows)


def suppression_totals(conn) -> dict[str, int]:
    """Suppressions per reason, from the recorded changes."""
    rows = conn.execute(select(suppression_counts.c.reason, func.sum(suppression_counts.c.n))
                        .group_by(suppression_counts.c.reason)).all()
    return {r: int(n) for r, n in rows if n}


def suppression_growth(conn, since_day: str) -> list[tuple[str, str, int]]:
    """(day, reason, net change) for the UTC days from `since_day` (ISO date)."""
    sc = suppression_counts.c
    rows = conn.execute(select(sc.day, sc.reason, func.sum(sc.n)).where(sc.day >= since_day)
                        .group_by(sc.day, sc.reason)).all()
    return [(d, r, int(n)) for d, r, n in rows if n]


def fold_suppression_counts(conn, now: datetime | None = None) -> None:
    """Replace the recorded changes by one row per day and reason (days before the last
    GROWTH_DAYS: one row per reason, day ""). The rows folded are exactly those this statement
    deleted, so changes committed meanwhile are neither lost nor counted twice."""
    oldest = ((now or datetime.now(timezone.utc)) - timedelta(days=GROWTH_DAYS)).date().isoformat()
    totals: Counter = Counter()
    for reason, n, day in conn.execute(suppression_counts.delete().returning(
            suppression_counts.c.reason, suppression_counts.c.n, suppression_counts.c.day)):
        totals[(day if day >= oldest else "", reason)] += n
    for day in sorted({d for d, _ in totals}):
        count_suppressions(conn, {r: n for (d, r), n in totals.items() if d == day}, day)


def last_lift_id(conn, address: str, scope: str) -> int:
    """The history id of the latest lift (deleted or expired) of (address, scope); 0 if none."""
    return conn.execute(select(func.max(suppression_history.c.id))
                        .where(suppression_history.c.address == address)
                        .where(suppression_history.c.scope == scope)
                        .where(suppression_history.c.action.in_(("deleted", "expired")))).scalar() or 0
