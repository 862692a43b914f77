"""Wiring: engines, migrations, and the durable-intake-then-enqueue step every input uses.

Adapter layer. Nothing happens at import time; each function wires what it needs when called.

Intake rule (DESIGN.md "durable before acknowledged"): `submit_intake` commits the raw input to
the `intake` table first, and only then enqueues its id. If enqueueing fails the row stays
`pending` and the periodic sweep (workers/tasks.py) re-enqueues it, so a broker outage delays
work but never loses it. In the embedded default (no broker) the ids go to the `inline`
callable the caller passes in: the entrypoints build it (entrypoints/dispatch.py: process now,
or `bounceproc serve`'s background worker). Wiring never calls the application layer itself.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select
from sqlalchemy.engine import Engine

from bounceproc.storage.bulk import bulk_insert
from bounceproc.storage.dialect import conflict_insert
from bounceproc.storage.tables import intake
from bounceproc.config import Settings
from bounceproc.domain.storable import escape_unstorable

log = logging.getLogger("bounceproc")

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_celery_apps: dict[tuple[str, str], Any] = {}

Dispatch = Callable[[list[int]], object]
"""What processes committed intake ids in the embedded mode (see enqueue_intake)."""

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def normalise_db_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # committed = on disk, even across a power loss
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def engine(settings: Settings) -> Engine:
    url = normalise_db_url(settings.db_url)
    with _engines_lock:
        eng = _engines.get(url)
        if eng is None:
            if url.startswith("sqlite"):
                Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
                eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
                event.listen(eng, "connect", _sqlite_pragmas)
            else:
                eng = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            _engines[url] = eng
        return eng


def unpooled_engine(settings: Settings) -> Engine:
    """An engine that keeps no connection between uses: for a thread of a process that forks later
    (the Celery worker's main process), whose pooled connections a forked child must not inherit."""
    from sqlalchemy.pool import NullPool
    return create_engine(normalise_db_url(settings.db_url), poolclass=NullPool)


def dispose_engine(settings: Settings) -> None:
    """Close the pooled connections of these settings' engine and forget it (others stay)."""
    with _engines_lock:
        eng = _engines.pop(normalise_db_url(settings.db_url), None)
    if eng is not None:
        eng.dispose()


def dispose_engines() -> None:
    with _engines_lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()


def alembic_config(settings: Settings):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_db_url(settings.db_url).replace("%", "%%"))
    return cfg


def migrate(settings: Settings, revision: str = "head") -> None:
    from alembic import command
    eng = engine(settings)
    cfg = alembic_config(settings)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_schema(settings: Settings) -> None:
    """Migrate on start when asked (`auto_migrate`), and always for a SQLite file."""
    if settings.auto_migrate or not settings.is_postgres:
        migrate(settings)


def downgrade(settings: Settings, revision: str) -> None:
    from alembic import command
    eng = engine(settings)
    cfg = alembic_config(settings)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def now() -> datetime:
    return datetime.now(timezone.utc)


def intake_row(kind: str, payload: bytes, *, origin: str, header: str = "", first_line: int = 0,
               meta: dict | None = None, records: int = 0, batch_key: str | None = None,
               done: bool = False) -> dict:
    """An intake row, `pending` (to be processed), or `done` when the caller records its events in
    the same transaction (the ESP webhooks)."""
    # Text columns hold no NUL / lone surrogate (PostgreSQL refuses them): escaped, never fatal.
    at = now()
    return {"kind": kind, "origin": escape_unstorable(origin), "header": escape_unstorable(header),
            "first_line": first_line, "payload": payload, "meta": meta, "state": "done" if done else "pending",
            "records": records, "attempts": 1 if done else 0, "created_at": at,
            "processed_at": at if done else None, "batch_key": batch_key}


def insert_intakes(conn, rows: list[dict]) -> list[int]:
    """Insert intake rows (from intake_row, no batch_key) in one statement; their ids, in order.
    The one insert path of intake batches: the SMTP sink's group commit and the ESP webhooks'."""
    ids = [i for (i,) in bulk_insert(conn, intake, rows, returning=("id",))]
    # Ids come from the sequence in row order: sorted, they line up with `rows`.
    return sorted(ids)


def insert_intake(conn, kind: str, payload: bytes, *, origin: str, header: str = "",
                  first_line: int = 0, meta: dict | None = None, records: int = 0,
                  batch_key: str | None = None) -> int:
    """Insert one intake row and return its id. With a `batch_key` already stored (the same
    batch sent again), nothing is inserted and the id of the stored row is returned."""
    row = intake_row(kind, payload, origin=origin, header=header, first_line=first_line, meta=meta,
                     records=records, batch_key=batch_key)
    if batch_key is None:
        return conn.execute(insert(intake).returning(intake.c.id), row).scalar_one()
    new_id = conn.execute(conflict_insert(conn, intake).on_conflict_do_nothing(index_elements=["batch_key"])
                          .returning(intake.c.id), row).scalar()
    if new_id is not None:
        return new_id
    return conn.execute(select(intake.c.id).where(intake.c.batch_key == batch_key)).scalar_one()


def submit_intake(settings: Settings, kind: str, payload: bytes, *, inline: Dispatch, origin: str,
                  header: str = "", first_line: int = 0, meta: dict | None = None, records: int = 0,
                  batch_key: str | None = None) -> int:
    """Commit one raw item to the durable intake, then enqueue it. Returns the intake id.

    Raises only if the commit fails (the caller must then not acknowledge). An enqueue failure
    is logged and left to the sweep. A `batch_key` seen before (see insert_intake) enqueues the
    stored row again, which is harmless: a processed row is skipped.
    """
    with engine(settings).begin() as conn:
        intake_id = insert_intake(conn, kind, payload, origin=origin, header=header,
                                  first_line=first_line, meta=meta, records=records,
                                  batch_key=batch_key)
    try:
        enqueue_intake(settings, [intake_id], inline)
    except Exception as exc:  # broker down: the sweep re-enqueues pending rows
        log.warning("intake %s committed but not enqueued (%s); the sweep will pick it up", intake_id, exc)
    return intake_id


def celery_app(settings: Settings):
    key = (settings.broker_url, settings.queue)
    app = _celery_apps.get(key)
    if app is None:
        from celery import Celery
        from bounceproc import deployment
        deployment.publish_as(settings, engine)
        app = Celery("bounceproc-client", broker=settings.broker_url, set_as_current=False)
        app.conf.update(broker_connection_retry_on_startup=False, broker_connection_max_retries=0,
                        task_default_queue=settings.queue,
                        broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5,
                                                  "max_retries": 0})
        _celery_apps[key] = app
    return app


def enqueue_intake(settings: Settings, ids: Iterable[int], inline: Dispatch) -> None:
    """Hand committed intake ids on: to the broker's `bounceproc.ingest` task, or, in the
    embedded mode (no broker), to `inline` (which processes them, now or on a thread)."""
    ids = [int(i) for i in ids]
    if not ids:
        return
    if settings.embedded:
        inline(ids)
        return
    celery_app(settings).send_task("bounceproc.ingest", args=[ids], queue=settings.queue,
                                   retry=False)
