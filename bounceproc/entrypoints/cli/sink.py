"""`bounceproc sink`, `bounceproc reprocess` and `bounceproc complaints`: the SMTP sink and what
it received.

Adapter layer (CLI). `sink` runs the SMTP sink in the foreground (entrypoints/smtp_sink.py);
`reprocess` re-classifies stored raw messages with the current rules; `complaints` shows complaint
rates per sending domain, IP and job, and the complaints nobody could be tied to (unattributed).
"""
from __future__ import annotations

from bounceproc import dbsetup

import json
import re
import sys
from datetime import datetime, timedelta, timezone

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """"7d", "12h", "30m", "2026-11-01" or an ISO timestamp -> aware UTC datetime."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(value or "")
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"--since wants 7d, 12h, 30m, a date or an ISO timestamp, got {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _settings(args, **overrides):
    from bounceproc import bootstrap
    from bounceproc.config import load_settings
    if not overrides:     # reprocess and complaints read what is stored: refuse a missing database
        return dbsetup.load_for_command(read_only=True)
    return load_settings(**{k: v for k, v in overrides.items() if v not in (None, (), [])})


def cmd_sink(args) -> int:
    from bounceproc import bootstrap, logs
    from bounceproc.entrypoints import smtp_sink
    logs.configure(*logs.from_environment("info"))
    try:
        settings = _settings(args, sink_listen=args.listen, sink_accept=tuple(args.accept or ()),
                             sink_max_message_size=args.max_size, sink_max_recipients=args.max_recipients,
                             sink_max_connections=args.max_connections,
                             sink_tls_cert=args.tls_cert, sink_tls_key=args.tls_key,
                             sink_proxy_protocol=True if args.proxy_protocol else None)
        smtp_sink.parse_listen(settings.sink_listen)
    except ValueError as exc:
        print(f"bounceproc sink: {exc}", file=sys.stderr)
        return 2
    if not settings.sink_accept:
        print("bounceproc sink: nothing to accept: give --accept DOMAIN_OR_ADDRESS (or sink_accept in "
              "the config / BOUNCEPROC_SINK_ACCEPT)", file=sys.stderr)
        return 2
    bootstrap.ensure_schema(settings)

    def ready(sink) -> None:
        mode = "embedded (processed in-process)" if settings.embedded else f"queue {settings.queue}"
        print(f"bounceproc sink listening on {sink.host}:{sink.port}, accepting "
              f"{', '.join(settings.sink_accept)}; {mode}", flush=True)

    return smtp_sink.run_sink(settings, on_ready=ready)


def cmd_reprocess(args) -> int:
    from bounceproc.app.message_intake import count_reprocessable, reprocess_messages
    from bounceproc.entrypoints.progress_bar import progress_bar, stderr_is_terminal
    try:
        since = parse_since(args.since)
        until = parse_since(args.until) if args.until else None
    except ValueError as exc:
        print(f"bounceproc reprocess: {exc}", file=sys.stderr)
        return 2
    settings = _settings(args)
    # On a terminal a bar (of the messages counted first); otherwise a line every 1000 messages.
    total = min(args.limit, count_reprocessable(settings, since, until)) if stderr_is_terminal() else None
    with progress_bar("bounceproc reprocess", total, "messages") as bar:
        summary = reprocess_messages(settings, since, until=until, dry_run=args.dry_run, limit=args.limit,
                                     progress=bar or (None if args.json else _progress),
                                     progress_every=1 if bar else 1000)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        verb = "would change" if args.dry_run else "changed"
        print(f"{summary['messages']} messages re-classified; {summary['changed']} {verb} "
              f"({summary['events_before']} events before, {summary['events_after']} after)")
        for line in summary["changes"][:args.show]:
            print("  " + line)
    return 0


def _progress(done: int) -> None:
    print(f"  ... {done} messages", file=sys.stderr, flush=True)


def cmd_complaints(args) -> int:
    from bounceproc import bootstrap
    from bounceproc.storage.complaints import complaint_rates, unattributed_complaints
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"bounceproc complaints: {exc}", file=sys.stderr)
        return 2
    settings = _settings(args)
    with bootstrap.engine(settings).connect() as conn:
        if args.unattributed:
            rows = unattributed_complaints(conn, since, limit=args.limit)
            if args.json:
                for r in rows:
                    print(json.dumps(r, default=str))
                return 0
            for r in rows:
                print(f"{r['occurred_at']:%Y-%m-%d %H:%M}  intake {r['intake_id']}  {r['feedback_type'] or '-':10} "
                      f"from {r['sender'] or '-'}  ip {r['source_ip'] or '-'}  msgid {r['message_id'] or '-'}")
            print(f"{len(rows)} unattributed complaints since {since:%Y-%m-%d %H:%M} UTC")
            return 0
        rows = complaint_rates(conn, since)
    from bounceproc.app.maintenance import COUNTS_RETENTION
    if since < datetime.now(timezone.utc) - COUNTS_RETENTION:
        print(f"bounceproc complaints: counts are kept {COUNTS_RETENTION.days} days; "
              "the rates cover only that part of the window", file=sys.stderr)
    if args.json:
        for r in rows:
            print(json.dumps(r, default=str))
        return 0
    if not rows:
        print(f"no complaints since {since:%Y-%m-%d %H:%M} UTC")
        return 0
    from bounceproc.entrypoints.cli import tables
    table = [{"by": r["dimension"], "key": "*" if r["dimension"] == "all" else (r["key"][:40] or "(unknown)"),
              "complaints": r["complaints"], "delivered": r["delivered"], "rate": tables.percent(r["rate"]),
              "": "WARN" if r["warn"] else ""} for r in rows]
    tables.write(f"complaints since {since:%Y-%m-%d %H:%M} UTC (warn above 0.1%; Gmail and Yahoo require < 0.3%)",
                 table, ["by", "key", "complaints", "delivered", "rate", ""])
    return 0


def register(sub) -> None:
    p = sub.add_parser("sink", help="run the SMTP sink for DSNs and feedback-loop (ARF) reports",
                       description="Receive asynchronous bounces and ARF complaints over SMTP. Only the "
                                   "listed domains/addresses are accepted (never a relay); each message "
                                   "is committed to the durable intake before it is answered 250.")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default sink_listen, 127.0.0.1:2525; port 0 = any free port)")
    p.add_argument("--accept", action="extend", nargs="+", metavar="DOMAIN_OR_ADDRESS",
                   help="recipient domains (bounces.example.net), subdomain suffixes (.example.net) or "
                        "addresses (fbl@example.net) to accept; repeatable (default sink_accept)")
    p.add_argument("--max-size", type=int, metavar="BYTES", help="largest message accepted (default 10 MiB)")
    p.add_argument("--max-recipients", type=int, metavar="N", help="recipients per message (default 50)")
    p.add_argument("--max-connections", type=int, metavar="N", help="concurrent connections (default 200)")
    p.add_argument("--tls-cert", metavar="PEM", help="certificate chain: offer STARTTLS")
    p.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    p.add_argument("--proxy-protocol", action="store_true",
                   help="expect a PROXY protocol header on every connection (behind HAProxy / a load balancer)")
    p.set_defaults(func=cmd_sink)

    p = sub.add_parser("reprocess", help="re-classify stored raw messages with the current rules",
                       description="Re-run the classification engine on raw messages the sink stored "
                                   "(within their retention) and replace their events; prints what changed.")
    p.add_argument("--since", required=True, help="7d, 12h, 30m, a date (2026-11-01) or an ISO timestamp")
    p.add_argument("--until", help="same forms; default now")
    p.add_argument("--limit", type=int, default=1_000_000, help="at most this many messages (default 1000000)")
    p.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    p.add_argument("--show", type=int, default=50, metavar="N", help="list at most N changes (default 50)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_reprocess)

    p = sub.add_parser("complaints", help="complaint rates per sending domain, IP and job; unattributed reports",
                       description="Complaint rate = complaints / deliveries in the window, per sending "
                                   "domain, source IP and job. Warns above 0.1 percent.")
    p.add_argument("--since", default="7d", help="window start: 7d (default), 24h, a date or ISO timestamp")
    p.add_argument("--unattributed", action="store_true",
                   help="list complaints whose recipient was redacted and could not be recovered")
    p.add_argument("--limit", type=int, default=200, help="rows for --unattributed (default 200)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_complaints)
