"""Prometheus metrics and the status dashboard page, both computed from the database on request.

Adapter layer. Reads status_report (no counters kept in process memory), so every API process
and every scrape sees the same numbers, whichever worker did the work.
`render_metrics(conn)` returns the Prometheus text exposition; `render_dashboard(conn)` an HTML page.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from bounceproc.app import status_report

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
        yield GaugeMetricFamily("bounceproc_quarantined_total", "Quarantined input lines and messages",
                                value=rep["quarantine"]["total"])


# Text providers appended to /metrics: `bounceproc serve` adds the bundled MTA's counters here
# when it runs the MTA in the same process (bounceproc.mta.management, docs/sending-core.md).
EXTRA_METRICS: list = []


def render_metrics(conn) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status_report.status(conn)))
    out = generate_latest(registry)
    for provider in EXTRA_METRICS:
        try:
            out += provider().encode()
        except Exception:  # noqa: BLE001 - the MTA stopping must not break the scrape
            continue
    return out


def _rows(title: str, rows: list[tuple]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h2>{html.escape(title)}</h2><table>{body or '<tr><td>(none)</td></tr>'}</table>"


def render_dashboard(conn) -> str:
    now = datetime.now(timezone.utc)
    rep = status_report.status(conn, now)
    windows = list(status_report.WINDOWS)
    types = sorted({t for w in rep["events"].values() for t in w})
    parts = [
        _rows("Events", [("type", *windows)] + [(t, *(rep["events"][w].get(t, 0) for w in windows)) for t in types]),
        _rows("Suppressions by reason", sorted(rep["suppressions"].items())),
        _rows("Blocks (never suppress recipients), last day",
              [("domain", "vmta", "source ip", "reason", "count")]
              + [(b["recipient_domain"], b["vmta"], b["source_ip"], b["reason"], b["count"])
                 for b in status_report.top_blocks(conn, now)]),
        _rows("Intake", [("pending", rep["intake"]["pending"]), ("failed", rep["intake"]["failed"]),
                         ("oldest pending (s)", rep["intake"]["oldest_pending_seconds"]),
                         ("quarantined", rep["quarantine"]["total"])]),
    ]
    return ("<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='30'>"
            "<title>bounceproc status</title><style>body{font-family:sans-serif;margin:2em}"
            "td{padding:2px 10px;border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>bounceproc</h1><p>{html.escape(rep['at'])}</p>{''.join(parts)}</body></html>")
