"""Counts for the status report: per-minute event and complaint counts (filled from the last two
days of events) and suppressions per reason (filled from the list).

Revision ID: 2026_11_25_06_event_counts
Revises: 2026_11_25_05_intake_once

`show status`, /metrics and the dashboard counted the events of the last day on every call, and
complaint rates grouped a day of deliveries: at tens of millions of events a day, each Prometheus
scrape scanned them all. They now sum `event_counts` (minute, type, category, n) and
`complaint_counts` (minute, sending domain, source IP, job, delivered, complained), appended
with every stored batch, and `suppression_counts` (reason, n: changes, folded hourly) instead of
grouping the whole suppression list.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_25_06_event_counts"
down_revision = "2026_11_25_05_intake_once"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=32), server_default="", nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_counts_minute", "event_counts", ["minute"], unique=False)
    op.create_table(
        "complaint_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sending_domain", sa.String(length=255), server_default="", nullable=False),
        sa.Column("source_ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("job_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("complained", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_complaint_counts_minute", "complaint_counts", ["minute"], unique=False)
    op.create_table(
        "suppression_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO suppression_counts (reason, n) SELECT reason, count(*) FROM suppressions GROUP BY reason")
    # Timestamps as each back end stores them (SQLite: naive UTC text, see tables.UTCDateTime).
    if op.get_bind().dialect.name == "postgresql":
        minute = "date_trunc('minute', occurred_at)"
        since = "now() - interval '2 days'"
        domain = "lower(split_part(sender, '@', 2))"
    else:
        minute = "strftime('%Y-%m-%d %H:%M:00.000000', occurred_at)"
        since = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-2 days')"
        domain = "lower(CASE WHEN instr(sender, '@') > 0 THEN substr(sender, instr(sender, '@') + 1) ELSE '' END)"
    op.execute(f"INSERT INTO event_counts (minute, type, category, n) "
               f"SELECT {minute}, type, category, count(*) FROM events WHERE occurred_at >= {since} "
               f"GROUP BY 1, 2, 3")
    op.execute(f"INSERT INTO complaint_counts (minute, sending_domain, source_ip, job_id, delivered, complained) "
               f"SELECT {minute}, {domain}, source_ip, job_id, "
               f"sum(CASE WHEN type = 'delivered' THEN 1 ELSE 0 END), "
               f"sum(CASE WHEN type = 'complained' THEN 1 ELSE 0 END) "
               f"FROM events WHERE occurred_at >= {since} AND type IN ('delivered', 'complained') "
               f"GROUP BY 1, 2, 3, 4")


def downgrade() -> None:
    op.drop_table("suppression_counts")
    op.drop_index("ix_complaint_counts_minute", table_name="complaint_counts")
    op.drop_table("complaint_counts")
    op.drop_index("ix_event_counts_minute", table_name="event_counts")
    op.drop_table("event_counts")
