"""Append-only event log: bulk insert of events, skipping ones already stored (same event_key).

Adapter layer (SQLAlchemy Core). `insert_events` costs a fixed number of statements per batch,
however large, and returns the keys that were new, so replays never create visible duplicates.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from bounceproc.adapters.bulk import bulk_insert
from bounceproc.adapters.tables import events as events_t
from bounceproc.domain.events import Event


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
    # Duplicates inside one batch: keep the first.
    seen: dict[str, Event] = {}
    for e in evs:
        seen.setdefault(e.event_key, e)
    rows = [event_row(e, now, intake_id) for e in seen.values()]
    return {k for (k,) in bulk_insert(conn, events_t, rows, conflict=("event_key",), returning=("event_key",))}
