"""Alembic migrations run up and down on PostgreSQL and SQLite, and match the schema in tables.py."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect

from bounceproc import bootstrap
from bounceproc.storage.tables import metadata


def _roundtrip(settings):
    bootstrap.migrate(settings)
    eng = bootstrap.engine(settings)
    tables = set(inspect(eng).get_table_names())
    assert set(metadata.tables) <= tables
    bootstrap.downgrade(settings, "base")
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    bootstrap.migrate(settings)
    assert set(metadata.tables) <= set(inspect(eng).get_table_names())


def test_migrations_up_down_up_on_sqlite(make_settings, tmp_path):
    _roundtrip(make_settings(database_url=f"sqlite:///{tmp_path / 'm.db'}"))


def test_migrations_up_down_up_on_postgres(make_settings, fresh_pg_url):
    settings = make_settings(database_url=fresh_pg_url)
    bootstrap.downgrade(settings, "base")
    _roundtrip(settings)


def _load_all_table_modules() -> None:
    """Tables defined by feature modules register on the shared metadata when imported."""
    import importlib
    import pkgutil

    import bounceproc.storage as storage
    for mod in pkgutil.walk_packages(storage.__path__, "bounceproc.storage."):
        importlib.import_module(mod.name)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrated_schema_matches_tables_module(backend, make_settings, tmp_path, request):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    _load_all_table_modules()
    url = f"sqlite:///{tmp_path / 's.db'}" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")
    settings = make_settings(database_url=url)
    bootstrap.migrate(settings)
    with bootstrap.engine(settings).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], diff


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_event_counts_migration_counts_the_last_two_days(backend, make_settings, tmp_path, request):
    """Upgrading to the count tables fills them from what is stored (events two days back, every
    suppression), so the status windows, complaint rates and suppression counts are right at once;
    older events are not counted."""
    from datetime import datetime, timedelta, timezone

    from bounceproc.app import status_report
    from bounceproc.storage.complaints import complaint_rates
    from bounceproc.storage.tables import events, suppressions
    url = f"sqlite:///{tmp_path / 'c.db'}" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")
    settings = make_settings(database_url=url)
    bootstrap.migrate(settings, "2026_11_25_05_intake_once")
    bootstrap.downgrade(settings, "2026_11_25_05_intake_once")   # the PostgreSQL template is at head
    now = datetime.now(timezone.utc)
    rows = [("delivered", "", now - timedelta(seconds=5)), ("bounced", "bad-mailbox", now - timedelta(seconds=5)),
            ("bounced", "bad-mailbox", now - timedelta(hours=3)), ("deferred", "", now - timedelta(days=5)),
            ("complained", "", now - timedelta(hours=1))]
    with bootstrap.engine(settings).begin() as conn:
        conn.execute(events.insert(), [
            {"event_key": f"k{i}", "type": t, "occurred_at": at, "source": "acct", "category": c,
             "recorded_at": now, "sender": "bounces@Sender.example.net", "source_ip": "192.0.2.7",
             "job_id": "j1"} for i, (t, c, at) in enumerate(rows)])
        conn.execute(suppressions.insert(), [
            {"address": f"s{i}@example.com", "reason": r, "origin": "system", "created_at": now,
             "updated_at": now} for i, r in enumerate(("hard_bounce", "hard_bounce", "complaint"))])
    bootstrap.migrate(settings)
    with bootstrap.engine(settings).connect() as conn:
        assert status_report.suppressions_by_reason(conn) == {"hard_bounce": 2, "complaint": 1}
        rep = status_report.events_by_type(conn, now)
        cats = status_report.events_by_category(conn, now)
        rates = {(r["dimension"], r["key"]): (r["complaints"], r["delivered"])
                 for r in complaint_rates(conn, now - timedelta(days=1))}
    assert rep["last_minute"] == {"delivered": 1, "bounced": 1}
    assert rep["last_day"] == {"delivered": 1, "bounced": 2, "complained": 1}
    assert cats["last_day"] == {"bad-mailbox": 2, "uncategorised": 1}
    assert rates == {("all", ""): (1, 1), ("domain", "sender.example.net"): (1, 1),
                     ("ip", "192.0.2.7"): (1, 1), ("job", "j1"): (1, 1)}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_quarantine_once_migration_keeps_the_oldest_of_repeated_entries(backend, make_settings, tmp_path, request):
    from datetime import datetime, timezone

    from sqlalchemy import select

    from bounceproc.storage.intake_rows import insert_quarantine
    from bounceproc.storage.tables import quarantine
    url = f"sqlite:///{tmp_path / 'q.db'}" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")
    settings = make_settings(database_url=url)
    bootstrap.migrate(settings, "2026_12_03_01_operator")
    bootstrap.downgrade(settings, "2026_12_03_01_operator")   # the PostgreSQL template is at head
    now = datetime.now(timezone.utc)
    entry = {"origin": "import:/var/log/pmta/acct.csv", "line_no": 3, "reason": "bad", "raw": "b,x",
             "created_at": now}
    with bootstrap.engine(settings).begin() as conn:
        conn.execute(sa.insert(sa.table("quarantine", *(sa.column(c) for c in (*entry, "intake_id")))),
                     [{**entry, "intake_id": 1}, {**entry, "intake_id": 2}, {**entry, "line_no": 4, "intake_id": 2}])
    bootstrap.migrate(settings)
    with bootstrap.engine(settings).begin() as conn:
        assert conn.execute(select(quarantine.c.intake_id, quarantine.c.line_no)
                            .order_by(quarantine.c.id)).all() == [(1, 3), (2, 4)]
        insert_quarantine(conn, 3, entry["origin"], [(3, "bad", "b,x")])    # the same again: no new row
        assert len(conn.execute(select(quarantine.c.id)).all()) == 2
