"""What `bounceproc show status|top|queues` prints: counts read from the database.

Application layer (SQLAlchemy Core reads only). Each function returns plain dicts so the CLI can
print them as a table or JSON, and the dashboard / metrics can reuse them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import case, func, select

from bounceproc.app import heartbeats
from bounceproc.storage.event_counts import window_counts
from bounceproc.storage.suppression_store import suppression_totals
from bounceproc.storage.tables import block_counters, events, intake, quarantine

# Windows are whole minutes of occurrence: "last_minute" is the current minute and the one before.
WINDOWS = {"last_minute": timedelta(minutes=1), "last_hour": timedelta(hours=1), "last_day": timedelta(days=1)}


def events_by_type(conn, now: datetime) -> dict[str, dict[str, int]]:
    return {name: window_counts(conn, now - span, "type") for name, span in WINDOWS.items()}


def events_by_category(conn, now: datetime) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, span in WINDOWS.items():
        counts = window_counts(conn, now - span, "category", ("bounced", "deferred", "complained"))
        out[name] = {(c or "uncategorised"): n for c, n in counts.items()}
    return out


def suppressions_by_reason(conn) -> dict[str, int]:
    return suppression_totals(conn)


def intake_backlog(conn, now: datetime) -> dict:
    rows = conn.execute(select(intake.c.kind, intake.c.state, func.count(), func.min(intake.c.created_at))
                        .where(intake.c.state != "done").group_by(intake.c.kind, intake.c.state)).all()
    out = {"pending": 0, "failed": 0, "oldest_pending_seconds": 0, "by_kind": {}}
    for kind, state, n, oldest in rows:
        out[state] = out.get(state, 0) + n
        out["by_kind"][f"{kind}/{state}"] = n
        if state == "pending" and oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=timezone.utc)
            out["oldest_pending_seconds"] = max(out["oldest_pending_seconds"], int((now - oldest).total_seconds()))
    return out


SOURCES = ("acct", "sink", "mailbox", "ses", "sendgrid", "mailgun", "postmark")
"""Where input comes in (_source_of), in the order the dashboard lists them."""


def _source_of():
    """The source an intake row came in by, from its origin: acct (pipe, import), sink, mailbox,
    or the ESP's name (esp:ses ...)."""
    o = intake.c.origin
    return case((intake.c.kind == "acct", "acct"), (o.like("sink:%"), "sink"), (o.like("mailbox:%"), "mailbox"),
                (o.like("esp:%"), func.substr(o, 5)), else_="other")


def intake_by_source(conn, now: datetime) -> dict[str, dict[str, dict[str, int]]]:
    """{window: {source: {"items": intake rows, "records": records they carried}}} for the last hour
    and day (the intake keeps raw input raw_retention_days, so longer windows are not kept here)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    source = _source_of().label("source")
    for name in ("last_hour", "last_day"):
        rows = conn.execute(select(source, func.count(), func.coalesce(func.sum(intake.c.records), 0))
                            .where(intake.c.created_at >= now - WINDOWS[name]).group_by(source)).all()
        out[name] = {s: {"items": int(n), "records": int(r)} for s, n, r in rows}
    return out


def quarantine_summary(conn, now: datetime, recent: int = 5) -> dict:
    total = conn.execute(select(func.count()).select_from(quarantine)).scalar_one()
    last_day = conn.execute(select(func.count()).select_from(quarantine)
                            .where(quarantine.c.created_at >= now - timedelta(days=1))).scalar_one()
    latest = conn.execute(select(quarantine.c.origin, quarantine.c.line_no, quarantine.c.reason)
                          .order_by(quarantine.c.id.desc()).limit(recent)).all()
    return {"total": total, "last_day": last_day,
            "latest": [{"origin": o, "line_no": ln, "reason": r} for o, ln, r in latest]}


def top_blocks(conn, now: datetime, limit: int = 20) -> list[dict]:
    """Blocks that never suppress recipients, by receiving domain and virtual MTA / IP, today and yesterday."""
    since = (now - timedelta(days=1)).date().isoformat()
    rows = conn.execute(select(block_counters.c.recipient_domain, block_counters.c.vmta,
                               block_counters.c.source_ip, block_counters.c.reason,
                               func.sum(block_counters.c.count).label("n"),
                               func.max(block_counters.c.last_diagnostic))
                        .where(block_counters.c.day >= since)
                        .group_by(block_counters.c.recipient_domain, block_counters.c.vmta,
                                  block_counters.c.source_ip, block_counters.c.reason)
                        .order_by(func.sum(block_counters.c.count).desc()).limit(limit)).all()
    return [{"recipient_domain": d, "vmta": v, "source_ip": ip, "reason": r, "count": int(n),
             "last_diagnostic": diag} for d, v, ip, r, n, diag in rows]


def top_bounce_domains(conn, now: datetime, limit: int = 20) -> list[dict]:
    rows = conn.execute(select(events.c.recipient_domain, events.c.reason, func.count().label("n"))
                        .where(events.c.occurred_at >= now - timedelta(days=1))
                        .where(events.c.type == "bounced")
                        .group_by(events.c.recipient_domain, events.c.reason)
                        .order_by(func.count().desc()).limit(limit)).all()
    return [{"recipient_domain": d, "reason": r, "count": n} for d, r, n in rows]


def status(conn, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    report = {
        "at": now.isoformat(timespec="seconds"),
        "events": events_by_type(conn, now),
        "categories": events_by_category(conn, now),
        "suppressions": suppressions_by_reason(conn),
        "intake": intake_backlog(conn, now),
        "sources": intake_by_source(conn, now),
        "quarantine": quarantine_summary(conn, now),
        "workers": heartbeats.workers(conn, now),
    }
    try:  # complaint rates per sending domain / IP / job (SMTP sink feature)
        from bounceproc.storage.complaints import complaint_rates
        report["complaints"] = complaint_rates(conn, now - timedelta(days=1))
    except ImportError:
        pass
    return report
