"""`bounceproc db upgrade|downgrade|current`: run the Alembic migrations on the configured database."""
from __future__ import annotations

import sys

from bounceproc import bootstrap
from bounceproc.config import load_settings


def _upgrade(args) -> int:
    settings = load_settings()
    bootstrap.migrate(settings, args.revision)
    print(f"database at {args.revision}: {_safe_url(settings.db_url)}", file=sys.stderr)
    return 0


def _downgrade(args) -> int:
    settings = load_settings()
    bootstrap.downgrade(settings, args.revision)
    print(f"database downgraded to {args.revision}", file=sys.stderr)
    return 0


def _current(args) -> int:
    from alembic.migration import MigrationContext
    settings = load_settings()
    with bootstrap.engine(settings).connect() as conn:
        print(MigrationContext.configure(conn).get_current_revision() or "(empty database)")
    return 0


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    from sqlalchemy.engine import make_url
    return make_url(bootstrap.normalise_db_url(url)).render_as_string(hide_password=True)


def register(sub) -> None:
    p = sub.add_parser("db", help="database migrations")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dsub.add_parser("upgrade", help="migrate to the latest schema (or REVISION)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_upgrade)
    down = dsub.add_parser("downgrade", help="migrate down to REVISION ('base' drops everything)")
    down.add_argument("revision")
    down.set_defaults(func=_downgrade)
    cur = dsub.add_parser("current", help="print the current revision")
    cur.set_defaults(func=_current)
