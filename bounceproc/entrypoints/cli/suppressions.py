"""`bounceproc suppressions export|add|remove`: the suppression list from the command line."""
from __future__ import annotations

from bounceproc import dbsetup

import csv
import sys

from sqlalchemy import select

from bounceproc import bootstrap

from bounceproc.app import service
from bounceproc.storage.tables import suppressions
from bounceproc.domain.address import AddressError, normalise_address

EXPORT_COLUMNS = ["address", "scope", "reason", "category", "rule", "source", "created_at", "expires_at"]


def _iso(v) -> str:
    return v.isoformat() if v is not None else ""


def _export(args) -> int:
    settings = dbsetup.load_for_command(read_only=True)
    q = select(*(suppressions.c[c] for c in EXPORT_COLUMNS)).order_by(suppressions.c.id)
    if args.scope:
        q = q.where(suppressions.c.scope == args.scope)
    if args.reason:
        q = q.where(suppressions.c.reason == args.reason)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    with bootstrap.engine(settings).connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(q)
        for row in result:
            writer.writerow([_iso(v) if c in ("created_at", "expires_at") else v
                             for c, v in zip(EXPORT_COLUMNS, row)])
    return 0


def _address(raw: str) -> str:
    try:
        return normalise_address(raw)
    except AddressError as exc:
        raise SystemExit(f"bounceproc: {exc}")


def _add(args) -> int:
    settings = dbsetup.load_for_command()
    with bootstrap.engine(settings).begin() as conn:
        created = service.suppress(conn, _address(args.address), args.scope, "manual", "operator", "cli",
                                   args.note or "")
    print("suppressed" if created else "already suppressed (updated)")
    return 0


def _remove(args) -> int:
    settings = dbsetup.load_for_command()
    with bootstrap.engine(settings).begin() as conn:
        existed = service.lift(conn, _address(args.address), args.scope, args.reason, "cli")
    print("lifted" if existed else "not suppressed")
    return 0 if existed else 1


def register(sub) -> None:
    p = sub.add_parser("suppressions", help="export or edit the suppression list")
    ssub = p.add_subparsers(dest="sup_command", metavar="ACTION", required=True)
    ex = ssub.add_parser("export", help="write the suppression list as CSV to stdout")
    ex.add_argument("--scope", help="only this scope (global, list:ID, domain:NAME)")
    ex.add_argument("--reason", help="only this reason (hard_bounce, complaint, unsubscribe, ...)")
    ex.set_defaults(func=_export)
    add = ssub.add_parser("add", help="suppress an address by hand")
    add.add_argument("address")
    add.add_argument("--scope", default="global")
    add.add_argument("--note")
    add.set_defaults(func=_add)
    rm = ssub.add_parser("remove", help="lift a suppression (the reason is kept in the history)")
    rm.add_argument("address")
    rm.add_argument("--scope", default="global")
    rm.add_argument("--reason", required=True, help="why it is lifted")
    rm.set_defaults(func=_remove)
