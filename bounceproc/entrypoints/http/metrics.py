"""Prometheus metrics, computed from the database's count tables on each scrape.

Adapter layer. Reads status_report and ops_view (no counters kept in process memory), so every
API process and every scrape sees the same numbers, whichever worker did the work.
`render_metrics(conn)` returns the Prometheus text exposition. Every label dimension holds at
most MAX_SERIES values plus `other` (docs/operations.md lists the bounds); parts that run only
sometimes (the sending core) add their families through app/ops_hooks.register_metrics.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from bounceproc.app import heartbeats, ops_hooks, ops_view, status_report
from bounceproc.storage import complaints
from bounceproc.storage.traffic_counts import rule_totals, traffic_totals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_SERIES = 20      # per label dimension: providers, sending domains, endpoints, rules (+ "other")


def _per_window(name: str, doc: str, label: str, by_window: dict[str, dict[str, int]]) -> GaugeMetricFamily:
    """One gauge family from status_report's {window: {label value: count}} tables."""
    family = GaugeMetricFamily(name, doc, labels=["window", label])
    for window, counts in by_window.items():
        for value, n in counts.items():
            family.add_metric([window, value], n)
    return family


class _StatusCollector:
    def __init__(self, report: dict):
        self.report = report

    def collect(self):
        rep = self.report
        yield _per_window("bounceproc_events", "Events recorded in the window, by type", "type", rep["events"])
        yield _per_window("bounceproc_failures", "Bounces, deferrals and complaints in the window, by category",
                          "category", rep["categories"])
        sup = GaugeMetricFamily("bounceproc_suppressions", "Suppressed (address, scope) pairs by reason",
                                labels=["reason"])
        for r, n in rep["suppressions"].items():
            sup.add_metric([r], n)
        yield sup
        intake = rep["intake"]
        yield GaugeMetricFamily("bounceproc_intake_pending", "Durable intake rows not processed yet",
                                value=intake["pending"])
        yield GaugeMetricFamily("bounceproc_intake_failed", "Durable intake rows that failed repeatedly",
                                value=intake["failed"])
        yield GaugeMetricFamily("bounceproc_intake_oldest_pending_seconds", "Age of the oldest pending intake row",
                                value=intake["oldest_pending_seconds"])
        received = GaugeMetricFamily("bounceproc_received_records", "Records received in the window, by source "
                                     "(acct, sink, mailbox, ses, sendgrid, mailgun, postmark)",
                                     labels=["window", "source"])
        for window, by_source in rep.get("sources", {}).items():
            for src, counts in by_source.items():
                received.add_metric([window, src], counts["records"])
        yield received
        yield GaugeMetricFamily("bounceproc_quarantined_total", "Quarantined input lines and messages",
                                value=rep["quarantine"]["total"])
        workers = rep["workers"]
        seen = GaugeMetricFamily("bounceproc_worker_last_seen_seconds", "Seconds since the worker's last "
                                 f"heartbeat (stale ones first, at most {MAX_SERIES} workers)", labels=["worker", "kind"])
        for x in workers[:MAX_SERIES]:
            seen.add_metric([x["worker"], x["kind"]], x["age_seconds"])
        yield seen
        states = GaugeMetricFamily("bounceproc_workers", "Workers reporting heartbeats, by state "
                                   f"(stale: none for over {heartbeats.STALE_SECONDS} s)", labels=["state"])
        for state in ("alive", "stale"):
            states.add_metric([state], sum(1 for x in workers if x["stale"] == (state == "stale")))
        yield states


def _family(name: str, doc: str, labels: list[str], rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for *values, n in rows:
        family.add_metric([str(v) for v in values], n)
    return family


def _bounded(counts: Counter, limit: int) -> list[tuple[str, int]]:
    """The top `limit` keys, the rest summed as `other` (bounded label cardinality)."""
    top = counts.most_common(limit)
    rest = sum(counts.values()) - sum(n for _, n in top)
    return top + ([("other", rest)] if rest else [])


def _ops_families(conn, now: datetime) -> list[GaugeMetricFamily]:
    """Complaints, webhooks, quarantine and classification series (label bounds: docs/operations.md)."""
    out = []
    rates = ops_view.complaint_rates(conn, now)
    for dim, label in (("provider", "provider"), ("sending_domain", "sending_domain")):
        rows = rates[dim][:MAX_SERIES]
        out.append(_family(f"bounceproc_complaint_rate_by_{label}",
                           f"Complaints / deliveries over the last day, by {label} (top {MAX_SERIES})",
                           [label], [(r["key"], r["rate"] or 0.0) for r in rows]))
        out.append(_family(f"bounceproc_complaints_by_{label}", f"Complaints over the last day, by {label}",
                           [label], [(r["key"], r["complaints"]) for r in rows]))
    overall = [r for r in complaints.complaint_rates(conn, now - timedelta(days=1)) if r["dimension"] == "all"]
    out.append(GaugeMetricFamily("bounceproc_complaint_rate", "Complaints / deliveries over the last day",
                                 value=(overall[0]["rate"] or 0.0) if overall else 0.0))
    hooks = ops_view.webhook_health(conn, now)
    for field, name, doc in (("delivered", "bounceproc_webhook_deliveries", "Webhook deliveries made, per endpoint"),
                             ("failed", "bounceproc_webhook_failures", "Webhook deliveries given up, per endpoint"),
                             ("backlog", "bounceproc_webhook_backlog", "Webhook deliveries pending, per endpoint"),
                             ("oldest_pending_seconds", "bounceproc_webhook_oldest_pending_seconds",
                              "Age of the endpoint's oldest pending delivery")):
        out.append(_family(name, doc, ["endpoint"], [(w["endpoint"], w[field]) for w in hooks[:MAX_SERIES]]))
    out.append(_family("bounceproc_quarantined", "Quarantined input by reason (top 10, the rest as other)",
                       ["reason"], ops_view.quarantine_by_reason(conn).items()))
    by_rule: Counter = Counter()
    for reason, rule, n, _ in rule_totals(conn, now - timedelta(days=1)):
        by_rule[(reason, rule)] += n
    top = by_rule.most_common(MAX_SERIES)
    rest = sum(by_rule.values()) - sum(n for _, n in top)
    out.append(_family("bounceproc_classified", "Bounces over the last day by reason and rule (top rules, the rest as other)",
                       ["reason", "rule"], [(r, rl, n) for (r, rl), n in top] + ([("other", "other", rest)] if rest else [])))
    provider_kind: Counter = Counter()
    for provider, kind, n in traffic_totals(conn, now - timedelta(hours=1), ("provider",)):
        provider_kind[(ops_view.rollup(provider), kind)] += n
    providers = _bounded(Counter({p: n for (p, _), n in provider_kind.items()}), MAX_SERIES)
    shown = {p for p, _ in providers}
    folded: Counter = Counter()
    for (p, kind), n in provider_kind.items():
        folded[(p if p in shown else "other", kind)] += n
    out.append(_family("bounceproc_traffic_last_hour", "Deliveries, bounces, deferrals and complaints in the last "
                       "hour, by receiving provider (top providers, the rest as other)", ["provider", "kind"],
                       [(p, k, n) for (p, k), n in sorted(folded.items())]))
    return out


def render_metrics(conn) -> bytes:
    now = datetime.now(timezone.utc)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status_report.status(conn, now)))
    registry.register(_Families(_ops_families(conn, now) + ops_hooks.extra_metrics(conn)))
    return generate_latest(registry)


class _Families:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        yield from self.families
