"""`bounceproc suppressions export|add|remove|import`: the suppression list from the command line.

`import FILE` applies a CSV (the format of POST /v1/imports: a header row, `address` required;
`reason`, `scope`, `note` optional) as an import job of its own, run here to the end through the
same code as the API's (entrypoints/http/imports.py); a progress bar on a terminal, one summary
line on stdout, the rows that failed on stderr.
"""
from __future__ import annotations

from bounceproc import dbsetup

import csv
import sys

from sqlalchemy import select

from bounceproc import bootstrap

from bounceproc.app import service
from bounceproc.entrypoints.cli.errors import fail, fail_file
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


def _read(name: str, limit: int) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read(limit)
    with open(name, "rb") as fh:
        return fh.read(limit)


def _import(args) -> int:
    import secrets
    from bounceproc.entrypoints.http import imports
    from bounceproc.entrypoints.http.common import parse_scope
    from bounceproc.entrypoints.http.problems import MAX_UPLOAD_BYTES, Problem
    from bounceproc.entrypoints.progress_bar import progress_bar
    try:
        data = _read(args.file, MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise Problem(413, f"the CSV is larger than {MAX_UPLOAD_BYTES} bytes (the API's limit too)")
        imports.header_columns(data)
        scope = parse_scope(args.scope)
    except OSError as exc:
        return fail_file("suppressions import", args.file, exc, 2)
    except Problem as exc:
        return fail("suppressions import", exc.detail, 2)
    settings = dbsetup.load_for_command()
    engine = bootstrap.engine(settings)
    job_id = "imp_" + secrets.token_hex(10)
    imports.create_job(engine, job_id, "remove" if args.remove else "add", scope, imports.CLI_ACTOR, data)
    rows = sum(1 for r in csv.reader(data.decode("utf-8-sig", errors="replace").splitlines()) if r) - 1
    with progress_bar("bounceproc suppressions import", max(rows, 0), "rows") as bar:
        imports.run_import(settings, job_id, progress=bar)
    job = imports.job_state(engine, job_id)
    print(f"{job['id']}: {job['state']}, {job['total']} rows: {job['changed']} changed, "
          f"{job['unchanged']} unchanged, {job['failed']} failed")
    for e in job["errors"][:args.show_errors]:
        print(f"  line {e['line'] or '-'}: {e['message']}", file=sys.stderr)
    return 0 if job["state"] == "done" and not job["failed"] else 1


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
    im = ssub.add_parser("import", help="suppress (or lift) the addresses of a CSV file, as POST /v1/imports does")
    im.add_argument("file", metavar="FILE", help="CSV with a header row: address, and optionally reason, scope, "
                                                "note; - reads stdin")
    im.add_argument("--scope", default="global", help="scope of rows without one (default global)")
    im.add_argument("--remove", action="store_true", help="lift the suppressions of the listed addresses instead")
    im.add_argument("--show-errors", type=int, default=20, metavar="N",
                    help="list at most N failed rows on stderr (default 20)")
    im.set_defaults(func=_import)
