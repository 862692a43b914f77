"""Database set-up for operators: does the database exist, is its schema at head, create it, and
say in one line what is wrong when it cannot be reached.

Wiring layer, next to bootstrap.py. Read-only commands call `require_database` so that a command
run with the wrong data dir or URL fails clearly instead of creating an empty database and
printing nothing. `explain` turns driver exceptions (SQLAlchemy, psycopg, sqlite3, the broker's)
into the one line the CLI prints.
"""
from __future__ import annotations

import re

from bounceproc import bootstrap
from bounceproc.config import ConfigError, Settings


class SetupError(ConfigError):
    """The database or broker is missing or unreachable; the message says what to do."""


def redacted(url: str) -> str:
    """A URL without its password, for printing."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def where(settings: Settings) -> str:
    """'database URL, data dir DIR': the line `serve` and `show status` print."""
    return f"database {redacted(settings.db_url)}, data dir {settings.data_dir}"


def require_database(settings: Settings) -> None:
    """Refuse (SetupError) when the configured database does not exist or cannot be reached."""
    path = settings.sqlite_file
    if path is not None:
        if not path.exists():
            raise SetupError(
                f"no database at {path} (data dir {settings.data_dir}); nothing was stored with these "
                "settings: run `bounceproc serve` or `bounceproc db create` first, or set "
                "BOUNCEPROC_DATA_DIR / BOUNCEPROC_DATABASE_URL to where your data is")
        return
    try:
        with bootstrap.engine(settings).connect():
            pass
    except Exception as exc:
        raise SetupError(explain(exc, settings)) from None


def schema_state(settings: Settings) -> tuple[str | None, str]:
    """(current revision or None for an empty database, head revision of the code)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    head = ScriptDirectory.from_config(bootstrap.alembic_config(settings)).get_current_head()
    with bootstrap.engine(settings).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def schema_line(settings: Settings) -> str:
    """What `serve` says about the schema, from the database itself."""
    current, head = schema_state(settings)
    if current == head:
        return f"schema up to date (revision {head})"
    if current is None:
        return "schema not created: run `bounceproc db upgrade` (or set auto_migrate)"
    return f"schema at {current}, this version needs {head}: run `bounceproc db upgrade` (or set auto_migrate)"


def create_database(settings: Settings) -> bool:
    """Create the configured database if it does not exist (PostgreSQL: CREATE DATABASE through
    the server's `postgres` database; SQLite: the file). Returns True if it was created."""
    path = settings.sqlite_file
    if path is not None:
        existed = path.exists()
        bootstrap.engine(settings).connect().close()      # creates the file (and the data dir)
        return not existed
    if not settings.is_postgres:
        raise SetupError(f"cannot create a database for {redacted(settings.db_url)}: only PostgreSQL and SQLite")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    url = make_url(bootstrap.normalise_db_url(settings.db_url))
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                return False
            conn.execute(text('CREATE DATABASE "{}"'.format(name.replace('"', '""'))))
            return True
    except SetupError:
        raise
    except Exception as exc:
        raise SetupError(explain(exc, settings)) from None
    finally:
        admin.dispose()


def explain(exc: BaseException, settings: Settings | None = None) -> str:
    """One line for a database or broker error, with what to do about it."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    first = re.sub(r"^\(\S+\)\s*", "", first)
    db = redacted(settings.db_url) if settings else "the database"
    m = re.search(r'database "([^"]+)" does not exist', text)
    if m:
        return f"database {m.group(1)!r} does not exist on the server ({db}): create it with `bounceproc db create`"
    module = type(exc).__module__ or ""
    if "kombu" in module or "redis" in module or "celery" in module:
        broker = redacted(settings.broker_url) if settings else "the broker"
        return f"cannot reach the broker {broker}: {first}"
    if "connection" in text.lower() or "could not connect" in text.lower() or "timeout" in text.lower():
        return f"cannot connect to {db}: {first}"
    if "unable to open database file" in text:
        return f"cannot open {db}: is the data dir writable? ({first})"
    return f"database error on {db}: {first}"


def is_infrastructure_error(exc: BaseException) -> bool:
    """A database / broker connection problem (as opposed to a bug): print `explain`, not a trace."""
    names = {c.__name__ for c in type(exc).__mro__}
    module = type(exc).__module__ or ""
    return bool(names & {"OperationalError", "InterfaceError"}) or (
        ("kombu" in module or "redis" in module) and "ConnectionError" in names)


def load_for_command(read_only: bool = False) -> Settings:
    """Settings for a CLI command, with the schema ensured (embedded SQLite / auto_migrate).
    A read-only command refuses a database that does not exist instead of creating it."""
    from bounceproc.config import load_settings
    settings = load_settings()
    if read_only:
        require_database(settings)
    bootstrap.ensure_schema(settings)
    return settings
