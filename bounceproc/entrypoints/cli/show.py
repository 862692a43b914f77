"""`bounceproc show status|top|queues [--json]`: what the postmaster on call looks at first."""
from __future__ import annotations

from bounceproc import dbsetup

import json
import sys

from bounceproc import bootstrap, dbsetup

from bounceproc.app import heartbeats, status_report
from bounceproc.entrypoints.cli import tables


def _print_status(rep: dict) -> None:
    w = sys.stdout.write
    w(f"bounceproc status at {rep['at']}\n{rep['database']}, data dir {rep['data_dir']}\n\n")
    types = sorted({t for win in rep["events"].values() for t in win})
    tables.write("Events by type", [{"type": t, **{k: rep["events"][k].get(t, 0) for k in status_report.WINDOWS}}
                                    for t in types], ["type", *status_report.WINDOWS])
    cats = sorted({c for win in rep["categories"].values() for c in win})
    w("\n")
    tables.write("Failures by category",
                 [{"category": c, **{k: rep["categories"][k].get(c, 0) for k in status_report.WINDOWS}} for c in cats],
                 ["category", *status_report.WINDOWS])
    w("\n")
    tables.write("Suppressions by reason", [{"reason": r, "count": n} for r, n in sorted(rep["suppressions"].items())],
                 ["reason", "count"])
    w("\n")
    srcs = sorted({src for win in rep["sources"].values() for src in win})
    tables.write("Received by source (intake rows / records they carried)",
                 [{"source": src, **{k: "%d / %d" % (rep["sources"][k].get(src, {}).get("items", 0),
                                                     rep["sources"][k].get(src, {}).get("records", 0))
                                     for k in rep["sources"]}} for src in srcs], ["source", *rep["sources"]])
    i = rep["intake"]
    w(f"\nIntake backlog: {i['pending']} pending (oldest {i['oldest_pending_seconds']} s), {i['failed']} failed\n")
    q = rep["quarantine"]
    w(f"Quarantined lines/messages: {q['total']} in all, {q['last_day']} in the last day "
      "(`bounceproc quarantine list`)\n")
    for item in q["latest"]:
        w(f"  {item['origin']} line {item['line_no']}: {item['reason']}\n")
    w("\n")
    tables.write(f"Workers (heartbeats; stale: not heard from for over {heartbeats.STALE_SECONDS} s)",
                 [{**x, "state": "STALE" if x["stale"] else "alive"} for x in rep["workers"]],
                 ["worker", "kind", "hostname", "pid", "last_seen", "age_seconds", "state"])
    if "complaints" in rep:
        rows = [dict(r, rate=tables.percent(r.get("rate"))) if isinstance(r, dict) and "rate" in r else r
                for r in rep["complaints"] or []]
        w("\n")
        tables.write("Complaint rates (last day; Gmail/Yahoo require < 0.3%, we warn above 0.1%)",
                     rows if rows and isinstance(rows[0], dict) else [],
                     list(rows[0].keys()) if rows and isinstance(rows[0], dict) else [])


def _status(args) -> int:
    settings = dbsetup.load_for_command(read_only=True)
    with bootstrap.engine(settings).connect() as conn:
        rep = status_report.status(conn)
    rep = {"database": dbsetup.redacted(settings.db_url), "data_dir": settings.data_dir, **rep}
    if args.json:
        print(json.dumps(rep, default=str, indent=2))
    else:
        _print_status(rep)
    return 0


def _top(args) -> int:
    from datetime import datetime, timezone
    settings = dbsetup.load_for_command(read_only=True)
    now = datetime.now(timezone.utc)
    with bootstrap.engine(settings).connect() as conn:
        rep = {"blocks": status_report.top_blocks(conn, now, args.limit),
               "bounces": status_report.top_bounce_domains(conn, now, args.limit)}
    if args.json:
        print(json.dumps(rep, default=str, indent=2))
        return 0
    tables.write("Blocks by receiving domain and virtual MTA / IP (last day; never suppress recipients)",
                 rep["blocks"], ["recipient_domain", "vmta", "source_ip", "reason", "count"])
    sys.stdout.write("\n")
    tables.write("Bounces by receiving domain and reason (last day)", rep["bounces"], ["recipient_domain", "reason", "count"])
    return 0


def _queues(args) -> int:
    from datetime import datetime, timezone
    settings = dbsetup.load_for_command(read_only=True)
    with bootstrap.engine(settings).connect() as conn:
        rep = status_report.intake_backlog(conn, datetime.now(timezone.utc))
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"intake: {rep['pending']} pending, {rep['failed']} failed, oldest pending {rep['oldest_pending_seconds']} s")
    for k, n in sorted(rep["by_kind"].items()):
        print(f"  {k}: {n}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("show", help="status, top blocked domains, intake queues")
    ssub = p.add_subparsers(dest="show_command", metavar="WHAT", required=True)
    for name, fn, helptext in (("status", _status, "events, suppressions, backlog, quarantine"),
                               ("top", _top, "top blocked / bouncing receiving domains"),
                               ("queues", _queues, "durable intake backlog")):
        sp = ssub.add_parser(name, help=helptext)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "top":
            sp.add_argument("--limit", type=int, default=20)
        sp.set_defaults(func=fn)
