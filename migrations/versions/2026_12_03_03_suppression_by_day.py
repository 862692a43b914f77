"""Suppression counts by day: the dashboard's growth chart (new suppressions per day and reason)
reads suppression_counts instead of grouping the suppressions of 30 days (millions of rows).

Revision ID: 2026_12_03_03_suppression_by_day
Revises: 2026_12_03_02_worker_heartbeats

The recorded changes are replaced by the suppressions as they are, per UTC day of creation and
reason (the same totals; the days before the last 35 in one row per reason, day "").
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_12_03_03_suppression_by_day"
down_revision = "2026_12_03_02_worker_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suppression_counts") as batch:
        batch.add_column(sa.Column("day", sa.String(length=10), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "postgresql":
        day = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        oldest = "to_char((now() - interval '35 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    else:
        day = "substr(created_at, 1, 10)"
        oldest = "date('now', '-35 days')"
    op.execute("DELETE FROM suppression_counts")
    op.execute(f"INSERT INTO suppression_counts (day, reason, n) "
               f"SELECT CASE WHEN {day} >= {oldest} THEN {day} ELSE '' END, reason, count(*) "
               f"FROM suppressions GROUP BY 1, 2")


def downgrade() -> None:
    with op.batch_alter_table("suppression_counts") as batch:
        batch.drop_column("day")
