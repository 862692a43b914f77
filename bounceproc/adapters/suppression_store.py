"""Suppressions, their history, soft-bounce state, block counters and the webhook outbox (SQL side).

Adapter layer (SQLAlchemy Core). Batch operations for service.record_events; all writes go
through INSERT ... ON CONFLICT, never select-then-insert, so concurrent workers cannot create
duplicates.
"""
from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, delete, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bounceproc.adapters.tables import (
    block_counters, outbox, soft_state, suppression_history, suppressions,
)

CHUNK = 900  # stays under SQLite's bound-parameter limit with room to spare


def _ins(conn):
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _chunks(seq: Sequence, n: int = CHUNK):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def load_soft_states(conn, addresses: Iterable[str], lock: bool = True) -> dict[str, str]:
    """address -> comma list of days, for the addresses that have soft-bounce state."""
    addrs = sorted(set(addresses))
    out: dict[str, str] = {}
    for part in _chunks(addrs):
        q = select(soft_state.c.address, soft_state.c.days).where(soft_state.c.address.in_(part))
        if lock and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        out.update((a, d) for a, d in conn.execute(q))
    return out


def save_soft_states(conn, changed: dict[str, tuple[str, datetime, str]]) -> None:
    """changed: address -> (days, last_at, last_event_key); empty days deletes the row."""
    gone = [a for a, (days, _, _) in changed.items() if not days]
    for part in _chunks(gone):
        conn.execute(delete(soft_state).where(soft_state.c.address.in_(part)))
    rows = [{"address": a, "days": d, "count": len(d.split(",")), "last_at": t, "last_event_key": k}
            for a, (d, t, k) in changed.items() if d]
    if rows:
        stmt = _ins(conn)(soft_state)
        stmt = stmt.on_conflict_do_update(index_elements=["address"], set_={
            "days": stmt.excluded.days, "count": stmt.excluded.count,
            "last_at": stmt.excluded.last_at, "last_event_key": stmt.excluded.last_event_key})
        conn.execute(stmt, rows)


def existing_suppressions(conn, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    keys = sorted(set(keys))
    out: set[tuple[str, str]] = set()
    for part in _chunks(keys, 400):
        q = select(suppressions.c.address, suppressions.c.scope).where(
            tuple_(suppressions.c.address, suppressions.c.scope).in_(part))
        out.update((a, d) for a, d in conn.execute(q))
    return out


def insert_suppressions(conn, rows: list[dict]) -> set[tuple[str, str]]:
    """Insert suppressions that do not exist yet; return the (address, scope) keys created."""
    created: set[tuple[str, str]] = set()
    for part in _chunks(rows, 500):
        stmt = _ins(conn)(suppressions).on_conflict_do_nothing(
            index_elements=["address", "scope"]).returning(suppressions.c.address, suppressions.c.scope)
        created.update((a, s) for a, s in conn.execute(stmt, part))
    return created


def insert_history(conn, rows: list[dict]) -> None:
    if rows:
        conn.execute(insert(suppression_history), rows)


def bump_block_counters(conn, counts: dict[tuple, tuple[int, datetime, str]]) -> set[tuple]:
    """counts: (day, domain, vmta, ip, reason, category) -> (n, last_at, diagnostic).
    Returns the keys that had no counter yet (first block of the day: worth an alert)."""
    if not counts:
        return set()
    keys = list(counts)
    cols = (block_counters.c.day, block_counters.c.recipient_domain, block_counters.c.vmta,
            block_counters.c.source_ip, block_counters.c.reason, block_counters.c.category)
    known: set[tuple] = set()
    for part in _chunks(keys, 150):
        known.update(tuple(r) for r in conn.execute(select(*cols).where(tuple_(*cols).in_(part))))
    stmt = _ins(conn)(block_counters)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "recipient_domain", "vmta", "source_ip", "reason", "category"],
        set_={"count": block_counters.c.count + stmt.excluded.count,
              "last_at": stmt.excluded.last_at, "last_diagnostic": stmt.excluded.last_diagnostic})
    rows = [{"day": k[0], "recipient_domain": k[1], "vmta": k[2], "source_ip": k[3], "reason": k[4],
             "category": k[5], "count": n, "last_at": t, "last_diagnostic": d[:1000]}
            for k, (n, t, d) in counts.items()]
    for part in _chunks(rows, 500):
        conn.execute(stmt, part)
    return set(keys) - known


def new_webhook_id() -> str:
    """Standard Webhooks id: time-ordered and unique, no dots."""
    return "evt_%012x%s" % (int(time.time() * 1000), secrets.token_hex(8))


def webhook_id_for(event_key: str, type_: str) -> str:
    """Deterministic id for an outbox row caused by an event (a replay yields the same id)."""
    import hashlib
    return "evt_" + hashlib.blake2b(f"{event_key}\x1f{type_}".encode(), digest_size=12).hexdigest()


def outbox_row(webhook_id: str, type_: str, occurred_at: datetime, data: dict, now: datetime) -> dict:
    body = {"type": type_, "timestamp": occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": data}
    return {"webhook_id": webhook_id, "type": type_, "occurred_at": occurred_at, "created_at": now,
            "payload": json.dumps(body, separators=(",", ":"), default=str), "dispatched": False}


def insert_outbox(conn, rows: list[dict]) -> int:
    if not rows:
        return 0
    stmt = _ins(conn)(outbox).on_conflict_do_nothing(index_elements=["webhook_id"])
    n = 0
    for part in _chunks(rows, 500):
        n += conn.execute(stmt, part).rowcount or 0
    return n


def get_suppression(conn, address: str, scope: str):
    return conn.execute(select(suppressions).where(and_(
        suppressions.c.address == address, suppressions.c.scope == scope))).mappings().first()
