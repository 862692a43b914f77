"""Alembic environment for bounceproc: runs migrations on the connection or URL it is given.

bounceproc.bootstrap.migrate() configures Alembic programmatically (no alembic.ini): the
database URL comes from the settings, and a caller may pass an open connection in
`config.attributes["connection"]`.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bounceproc.storage import api_tables  # noqa: F401 - registers the API's tables on `metadata`
from bounceproc.storage import ops_tables  # noqa: F401 - the operations view's count tables
from bounceproc.storage.tables import metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
