"""Raw intake payloads compressed with lz4 instead of pglz (PostgreSQL only).

Revision ID: 2026_11_25_04_intake_lz4
Revises: 2026_11_25_03_api

An acct batch is a ~2 MB bytea written once by the pipe and read once by a worker. PostgreSQL
compresses values that large on its TOAST path; with the default pglz that costs several
milliseconds per batch on each side, a sizeable share of the pipeline's CPU. lz4 is several
times faster at a similar ratio. A server built without lz4 keeps pglz (nothing else changes).
SQLite stores blobs as they are.
"""
from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "2026_11_25_04_intake_lz4"
down_revision = "2026_11_25_03_api"
branch_labels = None
depends_on = None


def _set(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.execute(text("SAVEPOINT bp_lz4"))
    try:
        bind.execute(text(f"ALTER TABLE intake ALTER COLUMN payload SET COMPRESSION {method}"))
    except Exception:  # server without lz4 support: keep the default
        bind.execute(text("ROLLBACK TO SAVEPOINT bp_lz4"))
    else:
        bind.execute(text("RELEASE SAVEPOINT bp_lz4"))


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
