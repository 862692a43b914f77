"""What `bounceproc mta show ...` and the management HTTP answer: PowerMTA's monitoring views
(`powermta.md` §4) over a snapshot of the running MTA, as JSON-able dicts, text tables and
Prometheus metrics.

Domain layer: pure, stdlib only. In: a snapshot dict (bounceproc.mta.management takes it on the
MTA's loop): `time`, `started`, `traffic` {window: {direction: {rcpt, msg, kbytes}}}, `connections`,
`queues` [{queue, domain, vmta, rcpt, kbytes, conn, mode, retry, last_error, delivered, bounced,
deferred, skipped}], `events` (recent activity), `counters`. Out: views and their text.

Columns as PowerMTA prints them: `show queues` -> `queue #rcpt kbytes conn mode retry "last
error"`; `show domains` -> `domain #rcpt kbytes conn mode "last error"`; `show vmtas` ->
`name domains #rcpt "% total" kbytes conn`; `show top` -> the queues with most recipients.
"""
from __future__ import annotations

import time

WINDOWS = (("total", "Total"), ("last_hour", "Last Hour"), ("last_min", "Last Min."))


def _fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _fmt_span(seconds: float) -> str:
    s = int(max(seconds, 0))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def status_view(snap: dict) -> dict:
    queues = snap["queues"]
    return {
        "status": "running", "started": _fmt_time(snap["started"]), "uptime": _fmt_span(snap["time"] - snap["started"]),
        "traffic": snap["traffic"],
        "conn": {"smtpOut": {"cur": sum(q["conn"] for q in queues)}, "smtpIn": {"cur": snap.get("connections_in", 0)}},
        "queue": {"smtp": {"rcp": sum(q["rcpt"] for q in queues), "dom": len({q["domain"] for q in queues}),
                           "kb": round(sum(q["kbytes"] for q in queues), 1)},
                  "backoff": sum(1 for q in queues if q["mode"] == "backoff"),
                  "paused": sum(1 for q in queues if q["mode"] == "paused")},
        "counters": snap.get("counters", {}),
        "events": snap.get("events", []),
    }


def queues_view(snap: dict, match: str = "") -> list[dict]:
    """Queues, optionally only `DOMAIN` or `DOMAIN/VMTA` (`{default}` for no virtual MTA)."""
    out = []
    for q in snap["queues"]:
        if match and match not in (q["queue"], q["domain"]):
            continue
        out.append(q)
    return sorted(out, key=lambda q: q["queue"])


def domains_view(snap: dict) -> list[dict]:
    by: dict[str, dict] = {}
    for q in snap["queues"]:
        d = by.setdefault(q["domain"], {"domain": q["domain"], "rcpt": 0, "kbytes": 0.0, "conn": 0,
                                         "mode": "normal", "last_error": ""})
        d["rcpt"] += q["rcpt"]
        d["kbytes"] = round(d["kbytes"] + q["kbytes"], 1)
        d["conn"] += q["conn"]
        if q["mode"] != "normal":
            d["mode"] = q["mode"]
        d["last_error"] = d["last_error"] or q["last_error"]
    return sorted(by.values(), key=lambda d: d["domain"])


def vmtas_view(snap: dict) -> list[dict]:
    total = sum(q["rcpt"] for q in snap["queues"]) or 0
    by: dict[str, dict] = {}
    for q in snap["queues"]:
        name = q["vmta"] or "{default}"
        v = by.setdefault(name, {"name": name, "domains": 0, "rcpt": 0, "kbytes": 0.0, "conn": 0})
        v["domains"] += 1
        v["rcpt"] += q["rcpt"]
        v["kbytes"] = round(v["kbytes"] + q["kbytes"], 1)
        v["conn"] += q["conn"]
    for v in by.values():
        v["pct_total"] = round(100.0 * v["rcpt"] / total, 1) if total else 0.0
    return sorted(by.values(), key=lambda v: v["name"])


def top_view(snap: dict, n: int = 20) -> list[dict]:
    return sorted(snap["queues"], key=lambda q: (-q["rcpt"], q["queue"]))[:n]


VIEWS = {"status": status_view, "queues": queues_view, "domains": domains_view, "vmtas": vmtas_view,
         "top": top_view}


def _table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def _queue_rows(queues: list[dict]) -> list[list]:
    return [[q["queue"], q["rcpt"], f'{q["kbytes"]:.1f}', q["conn"], q["mode"],
             _fmt_span(q["retry"]) if q["retry"] else "-", f'"{q["last_error"]}"' if q["last_error"] else ""]
            for q in queues]


def render(view: str, data) -> str:
    """The text PowerMTA's `pmta show VIEW` would print, for a view's data."""
    if view in ("queues", "top"):
        return _table(["queue", "#rcpt", "kbytes", "conn", "mode", "retry", "last error"], _queue_rows(data))
    if view == "domains":
        return _table(["domain", "#rcpt", "kbytes", "conn", "mode", "last error"],
                      [[d["domain"], d["rcpt"], f'{d["kbytes"]:.1f}', d["conn"], d["mode"],
                        f'"{d["last_error"]}"' if d["last_error"] else ""] for d in data])
    if view == "vmtas":
        return _table(["name", "domains", "#rcpt", "% total", "kbytes", "conn"],
                      [[v["name"], v["domains"], v["rcpt"], f'{v["pct_total"]:.1f}', f'{v["kbytes"]:.1f}', v["conn"]]
                       for v in data])
    t = data["traffic"]
    rows = [[label] + [t[key][d][k] if k != "kbytes" else f"{t[key][d][k]:.1f}"
                       for d in ("in", "out") for k in ("rcpt", "msg", "kbytes")] for key, label in WINDOWS]
    out = "Traffic\n" + _table(["", "in rcpts", "in msgs", "in kbytes", "out rcpts", "out msgs", "out kbytes"], rows)
    q = data["queue"]
    out += (f"Connections  out {data['conn']['smtpOut']['cur']}  in {data['conn']['smtpIn']['cur']}\n"
            f"Queues       SMTP {q['smtp']['rcp']} rcpts, {q['smtp']['dom']} domains, {q['smtp']['kb']:.1f} kbytes; "
            f"{q['backoff']} in backoff, {q['paused']} paused\n")
    if data["counters"]:
        out += "Counters     " + ", ".join(f"{k} {v}" for k, v in sorted(data["counters"].items())) + "\n"
    out += f"Status       {data['status']}   Started {data['started']}   Uptime {data['uptime']}\n"
    if data["events"]:
        out += "Recent events\n" + _table(["time", "event", "queue", "rcpt", "detail"],
                                          [[_fmt_time(e["time"]), e["event"], e["queue"], e["rcpt"], e["detail"][:100]]
                                           for e in data["events"][:20]])
    return out


def metrics_text(snap: dict) -> str:
    """Prometheus text exposition of the MTA's counters (queue depth per domain, outcomes per
    minute, connections, queues in backoff)."""
    lines = ["# HELP bounceproc_mta_queue_rcpts Recipients waiting, per destination domain.",
             "# TYPE bounceproc_mta_queue_rcpts gauge"]
    for d in domains_view(snap):
        lines.append(f'bounceproc_mta_queue_rcpts{{domain="{_esc(d["domain"])}"}} {d["rcpt"]}')
    lines += ["# HELP bounceproc_mta_last_minute Recipient outcomes in the last minute.",
              "# TYPE bounceproc_mta_last_minute gauge"]
    for outcome in ("delivered", "bounced", "deferred", "skipped"):
        lines.append(f'bounceproc_mta_last_minute{{outcome="{outcome}"}} {snap["outcomes_last_min"].get(outcome, 0)}')
    lines += ["# HELP bounceproc_mta_outcomes_total Recipient outcomes since start.",
              "# TYPE bounceproc_mta_outcomes_total counter"]
    for outcome in ("delivered", "bounced", "deferred", "skipped"):
        lines.append(f'bounceproc_mta_outcomes_total{{outcome="{outcome}"}} '
                     f'{sum(q.get(outcome, 0) for q in snap["queues"])}')
    status = status_view(snap)
    lines += ["# HELP bounceproc_mta_connections_out Open outbound SMTP connections.",
              "# TYPE bounceproc_mta_connections_out gauge",
              f"bounceproc_mta_connections_out {status['conn']['smtpOut']['cur']}",
              "# HELP bounceproc_mta_queues_in_backoff Queues in backoff mode.",
              "# TYPE bounceproc_mta_queues_in_backoff gauge",
              f"bounceproc_mta_queues_in_backoff {status['queue']['backoff']}"]
    return "\n".join(lines) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')
