"""`bounceproc db create|upgrade|downgrade|current`: create the configured database and run the
Alembic migrations on it.

Adapter layer (CLI). `create` makes the PostgreSQL database named in `database_url` (through the
server's `postgres` database; the user needs CREATEDB) or the SQLite file, then migrates it to
head; it is safe to run again. Connection problems are one line (dbsetup.explain), not a trace.
"""
from __future__ import annotations

import sys

from bounceproc import bootstrap, dbsetup
from bounceproc.config import load_settings


def _create(args) -> int:
    settings = load_settings()
    created = dbsetup.create_database(settings)
    bootstrap.migrate(settings)
    current, _head = dbsetup.schema_state(settings)
    print(f"{'created' if created else 'already there'}: {dbsetup.redacted(settings.db_url)} "
          f"(schema at {current})", file=sys.stderr)
    return 0


def _upgrade(args) -> int:
    settings = load_settings()
    if settings.is_postgres:     # a SQLite file is created by migrating; a server database is not
        dbsetup.require_database(settings)
    bootstrap.migrate(settings, args.revision)
    print(f"database at {args.revision}: {dbsetup.redacted(settings.db_url)}", file=sys.stderr)
    return 0


def _downgrade(args) -> int:
    settings = load_settings()
    dbsetup.require_database(settings)
    bootstrap.downgrade(settings, args.revision)
    print(f"database downgraded to {args.revision}", file=sys.stderr)
    return 0


def _current(args) -> int:
    settings = load_settings()
    dbsetup.require_database(settings)
    current, head = dbsetup.schema_state(settings)
    print(current or "(empty database)")
    if current != head:
        print(f"this version of bounceproc needs {head}: run `bounceproc db upgrade`", file=sys.stderr)
    return 0


ENV = ("Reads BOUNCEPROC_DATABASE_URL (or BOUNCEPROC_DATA_DIR for the embedded SQLite file) and "
       "BOUNCEPROC_CONFIG.")


def register(sub) -> None:
    import argparse
    p = sub.add_parser("db", help="create the database and run the schema migrations",
                       description="Create the configured database and migrate its schema. " + ENV,
                       epilog="example:\n  BOUNCEPROC_DATABASE_URL=postgresql://postgres@127.0.0.1/bounceproc "
                              "bounceproc db create",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    cr = dsub.add_parser("create", help="create the database if it does not exist, then migrate it to head",
                         description="Create the PostgreSQL database named in database_url (the user needs "
                                     "CREATEDB) or the SQLite file, then migrate it to the latest schema. "
                                     "Safe to run again. " + ENV)
    cr.set_defaults(func=_create)
    up = dsub.add_parser("upgrade", help="migrate to the latest schema (or REVISION)",
                         description="Run the Alembic migrations up to REVISION (default: head). " + ENV)
    up.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    up.set_defaults(func=_upgrade)
    down = dsub.add_parser("downgrade", help="migrate down to REVISION ('base' drops everything)",
                           description="Run the Alembic migrations down to REVISION. " + ENV)
    down.add_argument("revision", help="target revision; 'base' drops every table")
    down.set_defaults(func=_downgrade)
    cur = dsub.add_parser("current", help="print the current revision",
                          description="Print the database's schema revision. " + ENV)
    cur.set_defaults(func=_current)
