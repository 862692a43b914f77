"""The numbers of the operations view (dashboard panels, /metrics series, alerts), as plain dicts.

Application layer (SQLAlchemy Core reads only). Every number comes from the count tables that
`show status` reads (event_counts, complaint_counts, traffic_counts, rule_counts, block_counters,
suppression_counts) or from small indexed tables (intake backlog, webhook deliveries pending,
the latest suppressions); nothing scans `events`. Addresses are masked here unless the caller
may read them (`reveal`), so an HTML page or JSON document built from these dicts holds none.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bounceproc.app import heartbeats, ops_hooks, status_report
from bounceproc.domain.providers import named_providers, provider_of
from bounceproc.storage.api_tables import webhook_deliveries, webhook_endpoints
from bounceproc.storage.complaints import LIMIT_RATE, WARN_RATE
from bounceproc.storage.suppression_store import suppression_growth
from bounceproc.storage.tables import block_counters, intake, quarantine, suppressions
from bounceproc.storage.traffic_counts import (
    FILTERS, KINDS, rule_totals, top_values, traffic_series, traffic_totals,
)

# name -> (span, bucket seconds)
RANGES = {"hour": (timedelta(hours=1), 60), "day": (timedelta(days=1), 600), "month": (timedelta(days=30), 86400)}
TOP_PROVIDERS = 8          # stacked series; the rest are summed as "other"
TOP_ROWS = 20
LATEST_SUPPRESSIONS = 50
_ADDRESS = re.compile(r"([A-Za-z0-9._%+=~!#$&'*/?^`{|}-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask(text: str) -> str:
    """`text` with the local part of every address in it replaced (the domain is kept)."""
    return _ADDRESS.sub(lambda m: "•••@" + m.group(2), text or "")


def rollup(provider: str) -> str:
    """A stored provider value as shown: named providers as they are, domains rolled up."""
    return provider if provider in named_providers() else provider_of(provider)


def traffic(conn, now: datetime, range_: str = "hour", filters: dict[str, str] | None = None) -> dict:
    """Deliveries, hard / soft bounces, deferrals and complaints per bucket, stacked by provider."""
    span, step = RANGES.get(range_, RANGES["hour"])
    since = now - span
    rows = traffic_series(conn, since, step, filters or {})
    by_provider: Counter = Counter()
    for _, _, p, n in rows:
        by_provider[rollup(p)] += n
    shown = [p for p, _ in by_provider.most_common(TOP_PROVIDERS)]
    first = int(since.replace(second=0, microsecond=0).timestamp())
    first -= first % step
    buckets = list(range(first, int(now.timestamp()) + 1, step))
    index = {t: i for i, t in enumerate(buckets)}
    series: dict[str, dict[str, list[int]]] = {k: {} for k in KINDS}
    for t, kind, p, n in rows:
        p = rollup(p)
        p = p if p in shown else "other"
        if t in index:
            series[kind].setdefault(p, [0] * len(buckets))[index[t]] += n
    return {"range": range_, "step": step, "buckets": buckets, "series": series,
            "providers": shown + (["other"] if len(by_provider) > len(shown) else []),
            "totals": {k: sum(sum(v) for v in series[k].values()) for k in KINDS}}


def _rates(pairs: dict[str, list[int]]) -> list[dict]:
    out = []
    for key, (delivered, complained) in pairs.items():
        if not complained and not delivered:
            continue
        rate = complained / delivered if delivered else None
        out.append({"key": key, "delivered": delivered, "complaints": complained, "rate": rate,
                    "warn": rate is not None and rate > WARN_RATE,
                    "over_limit": rate is not None and rate > LIMIT_RATE})
    out.sort(key=lambda r: (-(r["rate"] if r["rate"] is not None else 1.0), -r["complaints"], r["key"]))
    return out[:TOP_ROWS]


def complaint_rates(conn, now: datetime, span: timedelta = timedelta(days=1)) -> dict:
    """Complaint rate per provider and per sending domain over `span`, with the two reference lines."""
    out: dict = {"warn_rate": WARN_RATE, "limit_rate": LIMIT_RATE}
    for name, col in (("provider", "provider"), ("sending_domain", "sending_domain")):
        pairs: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for key, kind, n in traffic_totals(conn, now - span, (col,)):
            key = rollup(key) if col == "provider" else key
            if kind == "delivered":
                pairs[key or "(none)"][0] += n
            elif kind == "complained":
                pairs[key or "(none)"][1] += n
        out[name] = _rates(pairs)
    return out


def top_reasons(conn, now: datetime, reveal: bool = False, limit: int = TOP_ROWS) -> list[dict]:
    """Bounce reasons and rules of the last day, with the day before for the trend."""
    day = timedelta(days=1)
    before = {(r, rl): n for r, rl, n, _ in rule_totals(conn, now - 2 * day, now - day)}
    rows = sorted(rule_totals(conn, now - day), key=lambda x: (-x[2], x[0], x[1]))[:limit]
    out = []
    for reason, rule, n, example in rows:
        prev = before.get((reason, rule), 0)
        trend = "up" if n > prev * 1.2 else "down" if n < prev * 0.8 else "flat"
        out.append({"reason": reason, "rule": rule, "count": n, "previous": prev, "trend": trend,
                    "example": example if reveal else mask(example)})
    return out


def blocks(conn, now: datetime, reveal: bool = False) -> dict:
    """Providers refusing our IPs / domains (block_counters, last two days), and MTA queues in
    backoff when a sending core has registered its queues (ops_hooks)."""
    rows = []
    for b in status_report.top_blocks(conn, now, limit=TOP_ROWS):
        rows.append({**b, "provider": rollup(b["recipient_domain"]),
                     "last_diagnostic": b["last_diagnostic"] if reveal else mask(b["last_diagnostic"])})
    firsts = _block_times(conn, now)
    for r in rows:
        r["since"], r["last_at"] = firsts.get((r["recipient_domain"], r["vmta"], r["source_ip"], r["reason"]),
                                              ("", ""))
    queues = ops_hooks.queues(conn)
    return {"blocks": rows, "queues": None if queues is None else [q for q in queues if q.get("state") == "backoff"]}


def _block_times(conn, now: datetime) -> dict[tuple, tuple[str, str]]:
    """(domain, vmta, ip, reason) -> (first day seen, last time), over the days top_blocks reads."""
    since = (now - timedelta(days=1)).date().isoformat()
    bc = block_counters.c
    rows = conn.execute(select(bc.recipient_domain, bc.vmta, bc.source_ip, bc.reason, func.min(bc.day),
                               func.max(bc.last_at)).where(bc.day >= since)
                        .group_by(bc.recipient_domain, bc.vmta, bc.source_ip, bc.reason)).all()
    return {(d, v, ip, r): (first, last.isoformat(timespec="seconds") if last else "")
            for d, v, ip, r, first, last in rows}


def suppression_panel(conn, now: datetime, reveal: bool = False) -> dict:
    """Suppressions by reason and their net change per day and reason over 30 days (both from
    suppression_counts), and the latest 50 with their evidence (the created_at index)."""
    since = (now - timedelta(days=29)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [(since + timedelta(days=i)).date().isoformat() for i in range(30)]
    index = {d: i for i, d in enumerate(days)}
    growth: dict[str, list[int]] = {}
    for d, reason, n in suppression_growth(conn, days[0]):
        if d in index:
            growth.setdefault(reason, [0] * len(days))[index[d]] += n
    latest = []
    for r in conn.execute(select(suppressions.c.address, suppressions.c.scope, suppressions.c.reason,
                                 suppressions.c.rule, suppressions.c.source, suppressions.c.status,
                                 suppressions.c.diagnostic, suppressions.c.created_at)
                          .order_by(suppressions.c.created_at.desc(), suppressions.c.id.desc())
                          .limit(LATEST_SUPPRESSIONS)).mappings():
        latest.append({"address": r["address"] if reveal else mask(r["address"]), "scope": r["scope"],
                       "reason": r["reason"], "rule": r["rule"], "source": r["source"], "status": r["status"],
                       "diagnostic": r["diagnostic"] if reveal else mask(r["diagnostic"]),
                       "created_at": r["created_at"].isoformat(timespec="seconds")})
    return {"by_reason": status_report.suppressions_by_reason(conn), "growth": {"days": days, "by_reason": growth},
            "latest": latest,
            "revealed": reveal}


def webhook_health(conn, now: datetime) -> list[dict]:
    """Per endpoint: pending deliveries (backlog), the oldest one's age, failed deliveries, state."""
    pending = {e: (int(n), o) for e, n, o in conn.execute(
        select(webhook_deliveries.c.endpoint_id, func.count(), func.min(webhook_deliveries.c.created_at))
        .where(webhook_deliveries.c.state == "pending").group_by(webhook_deliveries.c.endpoint_id)).all()}
    done = Counter()
    for e, state, n in conn.execute(select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.state, func.count())
                                    .where(webhook_deliveries.c.state != "pending")
                                    .group_by(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.state)).all():
        done[(e, state)] += int(n)
    out = []
    for ep in conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.endpoint_id, webhook_endpoints.c.enabled,
                                  webhook_endpoints.c.failing_since, webhook_endpoints.c.disabled_reason)
                           .order_by(webhook_endpoints.c.id)).mappings():
        n, oldest = pending.get(ep["id"], (0, None))
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        out.append({"endpoint": ep["endpoint_id"], "enabled": bool(ep["enabled"]), "backlog": n,
                    "oldest_pending_seconds": int((now - oldest).total_seconds()) if oldest else 0,
                    "delivered": done[(ep["id"], "delivered")], "failed": done[(ep["id"], "failed")],
                    "failing_since": ep["failing_since"].isoformat(timespec="seconds") if ep["failing_since"] else "",
                    "disabled_reason": ep["disabled_reason"]})
    return out


def quarantine_by_reason(conn, limit: int = 10) -> dict[str, int]:
    """Quarantined input by reason (its text up to the first ':' , the top `limit`, the rest
    as `other`): bounded for a metric label."""
    counts: Counter = Counter()
    for reason, n in conn.execute(select(quarantine.c.reason, func.count()).group_by(quarantine.c.reason)).all():
        counts[(reason or "").split(":")[0].strip()[:60] or "unknown"] += int(n)
    top = dict(counts.most_common(limit))
    rest = sum(counts.values()) - sum(top.values())
    return {**top, **({"other": rest} if rest else {})}


def health(conn, now: datetime) -> dict:
    """Intake backlog and age, quarantine, the workers' heartbeats (stale ones flagged) and the
    last processed intake, webhook endpoints."""
    last = conn.execute(select(func.max(intake.c.processed_at))).scalar()
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)
    return {"intake": status_report.intake_backlog(conn, now),
            "quarantine": status_report.quarantine_summary(conn, now)["total"],
            "last_processed": last.isoformat(timespec="seconds") if last else "",
            "last_processed_seconds": int((now - last).total_seconds()) if last else None,
            "workers": heartbeats.workers(conn, now), "webhooks": webhook_health(conn, now)}


def dashboard(conn, now: datetime | None = None, range_: str = "hour", filters: dict[str, str] | None = None,
              reveal: bool = False) -> dict:
    """Every panel of the dashboard, as one JSON-able document."""
    now = now or datetime.now(timezone.utc)
    filters = {k: v for k, v in (filters or {}).items() if k in FILTERS and v}
    return {"at": now.isoformat(timespec="seconds"), "filters": filters,
            "traffic": traffic(conn, now, range_, filters), "complaints": complaint_rates(conn, now),
            "reasons": top_reasons(conn, now, reveal), "blocks": blocks(conn, now, reveal),
            "suppressions": suppression_panel(conn, now, reveal), "health": health(conn, now),
            "filter_values": filter_values(conn, now), "sources": source_panel(conn, now)}


def source_panel(conn, now: datetime) -> list[dict]:
    """What came in by each source in the last hour and day (the intake rows `show status` and
    /metrics count): every known source, silent ones with zeros, then any other."""
    found = status_report.intake_by_source(conn, now)
    names = list(status_report.SOURCES) + sorted({s for w in found.values() for s in w} - set(status_report.SOURCES))
    zero = {"items": 0, "records": 0}
    return [{"source": name, **{w: found.get(w, {}).get(name, zero) for w in ("last_hour", "last_day")}}
            for name in names]


def filter_values(conn, now: datetime) -> dict[str, list[str]]:
    """The values each filter can take (seen in the last 30 days), for the page's selects."""
    return {col: sorted(top_values(conn, now - timedelta(days=30), col, 100)) for col in FILTERS}
