"""The dashboard's HTML: the page shell and the panels, rendered on the server from ops_view's
document (the page's script only draws the charts and swaps in fresh panels).

Adapter layer, stdlib only. Every value goes through html.escape; addresses were already masked
by ops_view unless the viewer may read suppressions.
"""
from __future__ import annotations

import json
from html import escape

from bounceproc.storage.traffic_counts import FILTERS

KIND_TITLES = {"delivered": "Deliveries", "hard_bounce": "Hard bounces", "soft_bounce": "Soft bounces",
               "deferred": "Deferrals", "complained": "Complaints"}
RANGE_TITLES = {"hour": "last hour, by minute", "day": "last day, by 10 minutes", "month": "last 30 days, by day"}
ARROWS = {"up": "▲", "down": "▼", "flat": "▶"}


def _e(v) -> str:
    return escape("" if v is None else str(v))


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), empty: str = "none") -> str:
    """A table of already-escaped cells."""
    if not rows:
        return f"<p class='muted'>{_e(empty)}</p>"
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td class='n'>{c}</td>" if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _pct(rate) -> str:
    return "–" if rate is None else f"{rate * 100:.3f} %"


def _rate_bar(rate, warn: float, limit: float) -> str:
    scale = limit * 2           # the bar's full width is twice the limit
    width = 0 if rate is None else min(100.0, rate / scale * 100)
    return (f"<div class='rate' title='{_pct(rate)}'><i style='width:{width:.1f}%'></i>"
            f"<b style='left:{warn / scale * 100:.1f}%'></b><b class='limit' style='left:{limit / scale * 100:.1f}%'></b></div>")


def _traffic(doc: dict) -> str:
    t = doc["traffic"]
    charts = "".join(f"<div class='chart'><h3>{_e(title)} <span class='muted' data-total='{k}'>"
                     f"{t['totals'][k]}</span></h3><div class='plot' data-kind='{k}'></div></div>"
                     for k, title in KIND_TITLES.items())
    totals = {}
    for kind, by_p in t["series"].items():
        for p, values in by_p.items():
            totals.setdefault(p, dict.fromkeys(KIND_TITLES, 0))[kind] += sum(values)
    rows = [[_e(p)] + [str(v[k]) for k in KIND_TITLES] for p, v in sorted(totals.items(), key=lambda x: -x[1]["delivered"])]
    return (f"<section id='traffic'><h2>Traffic by receiving provider <span class='muted'>"
            f"({_e(RANGE_TITLES.get(t['range'], t['range']))})</span></h2><div class='charts'>{charts}</div>"
            + _table(["provider", *KIND_TITLES.values()], rows, set(range(1, 6)), "no traffic in this range")
            + "</section>")


def _complaints(doc: dict) -> str:
    c = doc["complaints"]
    parts = [f"<section id='complaints'><h2>Complaint rate, last day <span class='muted'>(lines at "
             f"{c['warn_rate'] * 100:.1f} % and {c['limit_rate'] * 100:.1f} %)</span></h2>"]
    for dim, title in (("provider", "provider"), ("sending_domain", "sending domain")):
        rows = [[_e(r["key"]), str(r["complaints"]), str(r["delivered"]),
                 f"<span class='{'bad' if r['over_limit'] else 'warn' if r['warn'] else ''}'>{_pct(r['rate'])}</span>",
                 _rate_bar(r["rate"], c["warn_rate"], c["limit_rate"])] for r in c[dim]]
        parts.append(_table([title, "complaints", "delivered", "rate", ""], rows, {1, 2, 3}, "no deliveries"))
    return "".join(parts) + "</section>"


def _reasons(doc: dict) -> str:
    rows = [[_e(r["reason"]), f"<a href='/dashboard/rule/{_e(r['rule'])}'>{_e(r['rule'])}</a>", str(r["count"]),
             f"<span class='{r['trend']}' title='day before: {r['previous']}'>{ARROWS[r['trend']]}</span>",
             f"<code>{_e(r['example'][:200])}</code>"] for r in doc["reasons"]]
    return ("<section id='reasons'><h2>Top bounce reasons, last day</h2>"
            + _table(["reason", "rule", "bounces", "trend", "example"], rows, {2}, "no bounces") + "</section>")


def _blocks(doc: dict) -> str:
    b = doc["blocks"]
    rows = [[_e(x["provider"]), _e(x["recipient_domain"]), _e(x["vmta"]), _e(x["source_ip"]), _e(x["reason"]),
             str(x["count"]), _e(x["since"]), _e(x["last_at"]), f"<code>{_e(x['last_diagnostic'][:200])}</code>"]
            for x in b["blocks"]]
    out = ("<section id='blocks'><h2>Blocks (never suppress recipients), today and yesterday</h2>"
           + _table(["provider", "domain", "vmta", "source ip", "reason", "count", "since", "last", "reply"],
                    rows, {5}, "no blocks"))
    if b["queues"] is None:
        out += "<p class='muted'>Queues: the sending core is not running in this process.</p>"
    else:
        out += "<h3>Queues in backoff</h3>" + _table(
            ["queue", "provider", "source ip", "since", "size", "reply"],
            [[_e(q.get("queue")), _e(q.get("provider")), _e(q.get("source_ip")), _e(q.get("since")),
              _e(q.get("size")), _e(q.get("reply"))] for q in b["queues"]], {4}, "no queue in backoff")
    return out + "</section>"


def _suppressions(doc: dict) -> str:
    s = doc["suppressions"]
    by_reason = _table(["reason", "suppressed"], [[_e(r), str(n)] for r, n in sorted(s["by_reason"].items())], {1})
    latest = _table(["created", "address", "scope", "reason", "rule", "source", "status", "evidence"],
                    [[_e(x["created_at"]), _e(x["address"]), _e(x["scope"]), _e(x["reason"]), _e(x["rule"]),
                      _e(x["source"]), _e(x["status"]), f"<code>{_e(x['diagnostic'][:160])}</code>"]
                     for x in s["latest"]], empty="no suppressions")
    note = "" if s["revealed"] else " <span class='muted'>(addresses masked: your key may not read suppressions)</span>"
    return ("<section id='suppressions'><h2>Suppressions</h2>" + by_reason
            + "<h3>New per day and reason (net of lifts), last 30 days</h3><div class='plot' data-growth='1'></div>"
            + f"<h3>Latest {len(s['latest'])}{note}</h3>" + latest + "</section>")


def _sources(doc: dict) -> str:
    rows = [[_e(r["source"]), str(r["last_hour"]["records"]), str(r["last_hour"]["items"]),
             str(r["last_day"]["records"]), str(r["last_day"]["items"])] for r in doc["sources"]]
    return ("<section id='sources'><h2>Received by source <span class='muted'>(records; items are "
            "batches, messages or webhook POSTs)</span></h2>"
            + _table(["source", "records, last hour", "items, last hour", "records, last day", "items, last day"],
                     rows, {1, 2, 3, 4}) + "</section>")


def _health(doc: dict) -> str:
    h = doc["health"]
    i = h["intake"]
    rows = [["intake pending", str(i["pending"])], ["intake failed", str(i["failed"])],
            ["oldest pending (s)", str(i["oldest_pending_seconds"])], ["quarantined", str(h["quarantine"])],
            ["last intake processed", _e(h["last_processed"] or "never")]]
    hooks = _table(["endpoint", "enabled", "backlog", "oldest pending (s)", "delivered", "failed", "failing since"],
                   [[_e(w["endpoint"]), "yes" if w["enabled"] else "no: " + _e(w["disabled_reason"]), str(w["backlog"]),
                     str(w["oldest_pending_seconds"]), str(w["delivered"]), str(w["failed"]), _e(w["failing_since"])]
                    for w in h["webhooks"]], {2, 3, 4, 5}, "no webhook endpoints")
    stale = sum(w["stale"] for w in h["workers"])
    workers = _table(["worker", "kind", "host", "pid", "last seen", "seconds ago", "state"],
                     [[_e(w["worker"]), _e(w["kind"]), _e(w["hostname"]), str(w["pid"]), _e(w["last_seen"]),
                       str(w["age_seconds"]), "<strong class='bad'>stale</strong>" if w["stale"] else "alive"]
                      for w in h["workers"]], {3, 5}, "no worker has reported a heartbeat")
    return ("<section id='health'><h2>Health</h2>" + _table(["", ""], rows, {1})
            + f"<h3>Workers ({len(h['workers']) - stale} alive, {stale} stale)</h3>" + workers
            + "<h3>Webhook endpoints</h3>" + hooks + "</section>")


def _alerts(alerts: list[dict]) -> str:
    if not alerts:
        return ""
    rows = [[_e(a["alert"]), _e(a["subject"]), _e(a["since"]), _e(a["detail"])] for a in alerts]
    return "<section id='alerts' class='alerts'><h2>Alerts firing</h2>" + _table(["alert", "subject", "since", "detail"], rows) + "</section>"


def panels(doc: dict, alerts: list[dict]) -> str:
    """The <main> content: every panel."""
    return (_alerts(alerts) + _traffic(doc) + _complaints(doc) + _reasons(doc) + _blocks(doc)
            + _suppressions(doc) + _sources(doc) + _health(doc))


def _select(name: str, values: list[str], chosen: str, all_label: str) -> str:
    opts = [f"<option value=''>{_e(all_label)}</option>"] + [
        f"<option value='{_e(v)}'{' selected' if v == chosen else ''}>{_e(v)}</option>" for v in values]
    return f"<select name='{name}'>{''.join(opts)}</select>"


def page(doc: dict, alerts: list[dict], refresh_seconds: int = 30) -> str:
    """The whole page: header with the range and filters, the panels, the chart data."""
    rng = doc["traffic"]["range"]
    ranges = "".join(f"<option value='{k}'{' selected' if k == rng else ''}>{_e(v)}</option>"
                     for k, v in RANGE_TITLES.items())
    labels = {"sending_domain": "all sending domains", "vmta": "all virtual MTAs", "source_ip": "all source IPs",
              "job_id": "all jobs"}
    selects = "".join(_select(f, doc["filter_values"][f], doc["filters"].get(f, ""), labels[f]) for f in FILTERS)
    data = json.dumps({"traffic": doc["traffic"], "growth": doc["suppressions"]["growth"]}).replace("</", "<\\/")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>bounceproc dashboard</title>"
            "<meta name='viewport' content='width=device-width'>"
            "<link rel='stylesheet' href='/dashboard/static/uPlot.min.css'>"
            "<link rel='stylesheet' href='/dashboard/static/dashboard.css'></head><body>"
            f"<header><h1>bounceproc</h1><form id='filters'><select name='range'>{ranges}</select>{selects}</form>"
            f"<span>updated <time id='at'>{_e(doc['at'])}</time></span></header>"
            f"<main id='panels' data-refresh='{refresh_seconds}'>{panels(doc, alerts)}</main>"
            f"<script type='application/json' id='chart-data'>{data}</script>"
            "<script src='/dashboard/static/uPlot.iife.min.js'></script>"
            "<script src='/dashboard/static/dashboard.js'></script></body></html>")


def rule_page(rule: dict | None, rule_id: str) -> str:
    if rule is None:
        body = f"<p>No rule <code>{_e(rule_id)}</code> in the rules in force.</p>"
    else:
        body = _table(["field", "value"], [[_e(k), f"<code>{_e(v)}</code>"] for k, v in rule.items() if v])
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>rule " + _e(rule_id) + "</title>"
            "<link rel='stylesheet' href='/dashboard/static/dashboard.css'></head><body><main><section>"
            f"<h2>Classification rule <code>{_e(rule_id)}</code></h2>{body}"
            "<p class='muted'>The first rule whose conditions match a bounce decides its reason; "
            "<code>bounceproc classify --explain</code> shows it for a message.</p>"
            "<p><a href='/dashboard'>back to the dashboard</a></p></section></main></body></html>")
