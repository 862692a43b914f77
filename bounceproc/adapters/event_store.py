"""Append-only event log: bulk insert of events, skipping ones already stored (same event_key).

Adapter layer (SQLAlchemy Core). `insert_events` costs a fixed number of statements per batch,
however large, and returns the keys that were new, so replays never create visible duplicates.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bounceproc.adapters.tables import events as events_t
from bounceproc.domain.events import Event

CHUNK = 2000


def event_row(e: Event, recorded_at: datetime, intake_id: int | None = None) -> dict:
    return {
        "event_key": e.event_key, "type": e.type, "occurred_at": e.occurred_at,
        "recipient": e.recipient, "recipient_domain": e.recipient_domain, "sender": e.sender,
        "source": e.source, "status": e.status, "reply_code": e.reply_code,
        "diagnostic": e.diagnostic, "remote_mta": e.remote_mta, "reason": e.reason,
        "category": e.category, "hard": e.hard, "rule": e.rule, "feedback_type": e.feedback_type,
        "vmta": e.vmta, "source_ip": e.source_ip, "job_id": e.job_id, "list_id": e.list_id,
        "message_id": e.message_id, "intake_id": e.intake_id if intake_id is None else intake_id, "attrs": e.attrs or None,
        "recorded_at": recorded_at,
    }


def insert_events(conn, evs: Sequence[Event], intake_id: int | None = None) -> set[str]:
    """Insert events (tagged with the intake they came from); return the event_keys that were new."""
    if not evs:
        return set()
    now = datetime.now(timezone.utc)
    dialect = conn.dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert if dialect == "sqlite" else None
    new: set[str] = set()
    # Duplicates inside one batch: keep the first.
    seen: dict[str, Event] = {}
    for e in evs:
        seen.setdefault(e.event_key, e)
    unique = list(seen.values())
    for i in range(0, len(unique), CHUNK):
        rows = [event_row(e, now, intake_id) for e in unique[i:i + CHUNK]]
        if ins is None:  # pragma: no cover - other dialects
            conn.execute(insert(events_t), rows)
            new.update(r["event_key"] for r in rows)
            continue
        stmt = ins(events_t).on_conflict_do_nothing(index_elements=["event_key"]).returning(events_t.c.event_key)
        new.update(conn.execute(stmt, rows).scalars().all())
    return new
