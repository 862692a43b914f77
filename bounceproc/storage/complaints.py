"""Complaint rates per sending domain, source IP and job, and the complaints nobody could be tied to.

Adapter layer (SQLAlchemy Core), read-only; used by `bounceproc complaints` and the complaint
part of `bounceproc show status`.

rate = complaints / deliveries over the same window: `complained` events (ARF reports, acct `f`
records) against `delivered` events (acct `d` records, the sending core), as counted per minute in
`complaint_counts` when they were stored (event_counts.py), so a day of deliveries is never scanned.
Gmail and Yahoo require a rate under 0.3%; we warn above WARN_RATE (0.1%) to leave room.
The sending domain is the domain of the envelope sender (the return path, VERP or not), which is
what Gmail and Yahoo key their sender requirements on alongside the From domain.
Unattributed complaints are read from the event log (complaints are few, and indexed).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bounceproc.storage.event_counts import complaint_totals
from bounceproc.storage.tables import events

WARN_RATE = 0.001      # 0.1%
LIMIT_RATE = 0.003     # 0.3%: Gmail / Yahoo bulk-sender requirement
MAX_ROWS = 200         # per dimension


def complaint_rates(conn, since: datetime, until: datetime | None = None) -> list[dict]:
    """One row per (dimension, key) with complaints in the window, plus an overall row first.

    Row: {"dimension": "all"|"domain"|"ip"|"job", "key", "complaints", "delivered",
          "rate" (None when nothing was delivered), "warn" (rate > 0.1%), "over_limit" (> 0.3%)}.
    Sorted by dimension, then by rate (highest first). The window is whole minutes.
    """
    dims = (("all", ""), ("domain", "sending_domain"), ("ip", "source_ip"), ("job", "job_id"))
    out: list[dict] = []
    for name, column in dims:
        rows = []
        for key, d, c in complaint_totals(conn, since, until, column):
            if name != "all" and (not c or not key):
                continue
            if name == "all" and not c and not d:
                continue
            rate = (c / d) if d else None
            rows.append({"dimension": name, "key": key, "complaints": c, "delivered": d,
                         "rate": rate, "warn": rate is not None and rate > WARN_RATE,
                         "over_limit": rate is not None and rate > LIMIT_RATE})
        rows.sort(key=lambda x: (-(x["rate"] if x["rate"] is not None else float("inf")), -x["complaints"]))
        out.extend(rows[:MAX_ROWS])
    return out


def unattributed_complaints(conn, since: datetime, limit: int = 200) -> list[dict]:
    """Complaints whose recipient was redacted and could not be recovered, newest first."""
    q = (select(events.c.occurred_at, events.c.intake_id, events.c.feedback_type, events.c.sender,
                events.c.source_ip, events.c.message_id, events.c.job_id, events.c.list_id, events.c.attrs)
         .where(events.c.type == "complained", events.c.recipient == "", events.c.occurred_at >= since)
         .order_by(events.c.occurred_at.desc()).limit(limit))
    return [dict(r._mapping) for r in conn.execute(q)]

