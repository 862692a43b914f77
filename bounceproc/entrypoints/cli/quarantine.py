"""`bounceproc quarantine list|show|replay|purge`: what could not become an event, and why.

Adapter layer (CLI) over bounceproc.app.quarantine. `list` shows entries (accounting records the
parser refused, messages that gave no event), `show ID` one entry with its raw record or message,
`replay` runs entries through the current code and rules again (after a fix or a rules change;
idempotent), `purge` deletes entries.
"""
from __future__ import annotations

from bounceproc import dbsetup

import argparse
import json
import sys

ENV = "Reads BOUNCEPROC_DATABASE_URL, BOUNCEPROC_DATA_DIR and BOUNCEPROC_CONFIG"


def _since(value: str | None):
    from bounceproc.entrypoints.cli.sink import parse_since
    return parse_since(value) if value else None


def _list(args) -> int:
    from bounceproc import bootstrap
    from bounceproc.app import quarantine
    settings = dbsetup.load_for_command(read_only=True)
    with bootstrap.engine(settings).connect() as conn:
        rows = quarantine.list_entries(conn, _since(args.since), args.reason or "", args.limit)
    if args.json:
        for r in rows:
            print(json.dumps(r, default=str))
        return 0
    print("id\tcreated_at\torigin\tline\treason")
    for r in rows:
        line = r["line_no"] if r["line_no"] else "message"
        print(f"{r['id']}\t{r['created_at']:%Y-%m-%d %H:%M:%S}\t{r['origin']}\t{line}\t{r['reason']}")
    return 0


def _show(args) -> int:
    from bounceproc import bootstrap
    from bounceproc.app import quarantine
    settings = dbsetup.load_for_command(read_only=True)
    with bootstrap.engine(settings).connect() as conn:
        entry = quarantine.show_entry(conn, args.id)
    if entry is None:
        print(f"bounceproc quarantine show: no entry {args.id}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(entry, default=str))
        return 0
    where = f"line {entry['line_no']}" if entry["kind"] == "acct" else "message"
    print(f"quarantine {entry['id']}: {entry['kind']} from {entry['origin']} ({where}, intake "
          f"{entry['intake_id']}) at {entry['created_at']:%Y-%m-%d %H:%M:%S}")
    print(f"reason: {entry['reason']}")
    if entry.get("header"):
        print(f"header: {entry['header']}")
    print("raw:")
    print(entry["raw"])
    return 0


def _replay(args) -> int:
    from bounceproc import bootstrap
    from bounceproc.app import quarantine
    settings = dbsetup.load_for_command(read_only=True)
    res = quarantine.replay(settings, _since(args.since), args.ids or None)
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        print(f"replayed {res.replayed}: {res.resolved} now give events ({res.events_stored} new events "
              f"stored), {res.still_quarantined} still quarantined")
        for why in res.skipped:
            print(f"  skipped: {why}")
    return 0


def _purge(args) -> int:
    from bounceproc import bootstrap
    from bounceproc.app import quarantine
    if not (args.ids or args.before or args.all):
        print("bounceproc quarantine purge: say what to delete: ID…, --before WHEN or --all", file=sys.stderr)
        return 2
    settings = dbsetup.load_for_command(read_only=True)
    with bootstrap.engine(settings).begin() as conn:
        n = quarantine.purge(conn, ids=args.ids or None, before=_since(args.before))
    print(f"purged {n} quarantine entries")
    return 0


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("quarantine", help="list, show, replay and purge input that gave no event",
                       description=__doc__.split("\n\n")[1].replace("\n", " ") + " " + ENV + ".",
                       epilog="examples:\n  bounceproc quarantine list --since 1d\n  bounceproc quarantine show 42\n"
                              "  bounceproc quarantine replay --since 7d\n  bounceproc quarantine purge --before 30d",
                       formatter_class=fmt)
    qs = p.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    ls = qs.add_parser("list", help="entries, oldest first", description="List quarantine entries. " + ENV + ".")
    ls.add_argument("--since", help="only entries since: 30m, 12h, 7d, a date or an ISO time")
    ls.add_argument("--reason", help="only entries whose reason contains this text")
    ls.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_list)
    sh = qs.add_parser("show", help="one entry with its raw record or message",
                       description="Show one entry: why, and the raw record or the whole message. " + ENV + ".")
    sh.add_argument("id", type=int, help="the entry's id (from `quarantine list`)")
    sh.add_argument("--json", action="store_true", help="as JSON")
    sh.set_defaults(func=_show)
    rp = qs.add_parser("replay", help="run entries through the current code and rules again",
                       description="Re-run quarantined records and messages (all, the IDs given, or "
                                   "those since --since). Those that now give events are stored once "
                                   "and leave the quarantine; a replay can be repeated. " + ENV + ".")
    rp.add_argument("ids", nargs="*", type=int, metavar="ID", help="entries to replay (default: all)")
    rp.add_argument("--since", help="only entries since: 30m, 12h, 7d, a date or an ISO time")
    rp.add_argument("--json", action="store_true", help="the summary as JSON")
    rp.set_defaults(func=_replay)
    pg = qs.add_parser("purge", help="delete entries",
                       description="Delete quarantine entries: the IDs given, those older than "
                                   "--before, or --all. " + ENV + ".")
    pg.add_argument("ids", nargs="*", type=int, metavar="ID", help="entries to delete")
    pg.add_argument("--before", help="delete entries older than: 30d, a date or an ISO time")
    pg.add_argument("--all", action="store_true", help="delete every entry")
    pg.set_defaults(func=_purge)
