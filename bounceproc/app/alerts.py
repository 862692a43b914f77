"""Alerts: complaint rate, blocks, intake backlog, failing webhook endpoints; each announced once
when its condition starts and once when it clears, as a webhook and a log line.

Application layer. `evaluate(conn, settings, now)` reads the same counts as the dashboard
(ops_view), compares the conditions that hold now with `alert_state`, and for every change
writes the state, an outbox row of type `alert.<name>` (data: alert, subject, state
"firing"|"cleared", value, threshold, detail) and a WARNING (firing) or INFO (cleared) log line
on the `bounceproc.alerts` logger. A state flips with a conditional update, so two processes
evaluating at once announce a change once. Thresholds are settings (`alert_*`, config.py).
Run by the periodic intake sweep (Celery beat, or `bounceproc serve`'s timer).
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone

from sqlalchemy import and_, select, update

from bounceproc.app import ops_view
from bounceproc.config import Settings
from bounceproc.storage.bulk import bulk_insert
from bounceproc.storage.ops_tables import alert_state
from bounceproc.storage.suppression_store import insert_outbox, outbox_row

log = logging.getLogger("bounceproc.alerts")
ALERTS = ("complaint_rate", "block", "backlog", "webhook_failing")


def conditions(conn, settings: Settings, now: datetime) -> dict[tuple[str, str], tuple[float, float, str]]:
    """(alert, subject) -> (value, threshold, detail) for every condition that holds now."""
    out: dict[tuple[str, str], tuple[float, float, str]] = {}
    rates = ops_view.complaint_rates(conn, now)
    for dim in ("provider", "sending_domain"):
        for r in rates[dim]:
            if r["rate"] is not None and r["delivered"] >= settings.alert_complaint_min_delivered \
                    and r["rate"] > settings.alert_complaint_rate:
                out[("complaint_rate", f"{dim}:{r['key']}")] = (
                    r["rate"], settings.alert_complaint_rate,
                    f"{r['complaints']} complaints / {r['delivered']} delivered in the last day")
    for b in ops_view.blocks(conn, now)["blocks"]:
        if b["count"] >= settings.alert_block_count:
            subject = f"{b['provider']} {b['vmta'] or '-'} {b['source_ip'] or '-'}"
            value, _, detail = out.get(("block", subject), (0, 0, ""))
            out[("block", subject)] = (value + b["count"], settings.alert_block_count,
                                       detail or f"{b['reason']}: {b['last_diagnostic'][:200]}")
    health = ops_view.health(conn, now)
    age = health["intake"]["oldest_pending_seconds"]
    if age > settings.alert_backlog_seconds:
        out[("backlog", "intake")] = (age, settings.alert_backlog_seconds,
                                      f"{health['intake']['pending']} intake rows pending")
    for w in health["webhooks"]:
        if w["enabled"] and (w["failing_since"] or w["oldest_pending_seconds"] > settings.alert_webhook_backlog_seconds):
            out[("webhook_failing", w["endpoint"])] = (
                w["oldest_pending_seconds"], settings.alert_webhook_backlog_seconds,
                f"{w['backlog']} pending, failing since {w['failing_since'] or '-'}")
    return out


def _announce(conn, alert: str, subject: str, state: str, value: float, threshold: float, detail: str,
              now: datetime) -> dict:
    data = {"alert": alert, "subject": subject, "state": state, "value": value, "threshold": threshold,
            "detail": detail}
    digest = hashlib.blake2b(f"{alert}\x1f{subject}\x1f{state}\x1f{now.isoformat()}".encode(), digest_size=12)
    insert_outbox(conn, [outbox_row("alrt_" + digest.hexdigest(), f"alert.{alert}", now, data, now)])
    (log.warning if state == "firing" else log.info)("alert %s %s: %s (value %s, threshold %s) %s",
                                                      alert, state, subject, value, threshold, detail)
    return data


def evaluate(conn, settings: Settings, now: datetime | None = None) -> list[dict]:
    """Announce the alerts that started or cleared since the last evaluation; returns them."""
    now = now or datetime.now(timezone.utc)
    holding = conditions(conn, settings, now)
    known = {(r.alert, r.subject): r for r in conn.execute(select(alert_state))}
    changes = []
    for (alert, subject), (value, threshold, detail) in sorted(holding.items()):
        row = known.get((alert, subject))
        if row is None:
            won = bulk_insert(conn, alert_state, [{"alert": alert, "subject": subject[:255], "firing": True,
                                                   "value": value, "detail": detail, "changed_at": now}],
                              conflict=("alert", "subject"), returning=("id",))
        elif not row.firing:
            won = _flip(conn, row.id, True, value, detail, now)
        else:
            continue
        if won:
            changes.append(_announce(conn, alert, subject, "firing", value, threshold, detail, now))
    for (alert, subject), row in sorted(known.items()):
        if row.firing and (alert, subject) not in holding and _flip(conn, row.id, False, row.value, "", now):
            changes.append(_announce(conn, alert, subject, "cleared", row.value, 0, row.detail, now))
    return changes


def evaluate_now(settings: Settings) -> list[dict]:
    """`evaluate` in a transaction of its own; a failure is logged, not raised (the periodic
    sweep that calls it must go on)."""
    from bounceproc import bootstrap
    try:
        with bootstrap.engine(settings).begin() as conn:
            return evaluate(conn, settings)
    except Exception:
        log.exception("alert evaluation failed")
        return []


def _flip(conn, row_id: int, firing: bool, value: float, detail: str, now: datetime) -> bool:
    res = conn.execute(update(alert_state).where(and_(alert_state.c.id == row_id, alert_state.c.firing == (not firing)))
                       .values(firing=firing, value=value, detail=detail or alert_state.c.detail, changed_at=now))
    return res.rowcount == 1


def firing(conn) -> list[dict]:
    """The alerts firing now (for the dashboard)."""
    return [{"alert": r.alert, "subject": r.subject, "value": r.value, "detail": r.detail,
             "since": r.changed_at.isoformat(timespec="seconds")}
            for r in conn.execute(select(alert_state).where(alert_state.c.firing.is_(True)).order_by(alert_state.c.id))]

