"""Counts for the operations view: traffic per provider / sending domain / vmta / IP / job,
bounces per rule, and the alert states.

Revision ID: 2026_12_03_01_ops_counts
Revises: 2026_11_25_06_event_counts

Filled from the last two days of events, like event_counts was (older days start empty).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_12_03_01_ops_counts"
down_revision = "2026_11_25_06_event_counts"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "traffic_counts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=64), server_default="", nullable=False),
        sa.Column("sending_domain", sa.String(length=255), server_default="", nullable=False),
        sa.Column("vmta", sa.String(length=128), server_default="", nullable=False),
        sa.Column("source_ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("job_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), server_default=sa.text("60"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_traffic_counts_minute", "traffic_counts", ["minute"], unique=False)
    op.create_table(
        "rule_counts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), server_default="", nullable=False),
        sa.Column("rule", sa.String(length=64), server_default="", nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("example", sa.Text(), server_default="", nullable=False),
        sa.Column("bucket", sa.Integer(), server_default=sa.text("60"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rule_counts_minute", "rule_counts", ["minute"], unique=False)
    op.create_table(
        "alert_state",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("alert", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert", "subject", name="uq_alert_state"),
    )
    # The last two days of events, counted (provider = the recipient domain: the rollup to named
    # providers and "other" is applied when the counts are read back, ops_view.rollup).
    if op.get_bind().dialect.name == "postgresql":
        minute = "date_trunc('minute', occurred_at)"
        since = "now() - interval '2 days'"
        domain = "lower(split_part(sender, '@', 2))"
    else:
        minute = "strftime('%Y-%m-%d %H:%M:00.000000', occurred_at)"
        since = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-2 days')"
        domain = "lower(CASE WHEN instr(sender, '@') > 0 THEN substr(sender, instr(sender, '@') + 1) ELSE '' END)"
    kind = ("CASE WHEN type = 'bounced' AND hard THEN 'hard_bounce' WHEN type = 'bounced' THEN 'soft_bounce' "
            "ELSE type END")
    op.execute(f"INSERT INTO traffic_counts (minute, kind, provider, sending_domain, vmta, source_ip, job_id, n) "
               f"SELECT {minute}, {kind}, substr(recipient_domain, 1, 64), {domain}, vmta, source_ip, job_id, "
               f"count(*) FROM events WHERE occurred_at >= {since} "
               f"AND type IN ('delivered', 'bounced', 'deferred', 'complained') GROUP BY 1, 2, 3, 4, 5, 6, 7")
    op.execute(f"INSERT INTO rule_counts (minute, reason, rule, n, example) "
               f"SELECT {minute}, reason, rule, count(*), max(diagnostic) FROM events "
               f"WHERE occurred_at >= {since} AND type = 'bounced' GROUP BY 1, 2, 3")


def downgrade() -> None:
    op.drop_table("alert_state")
    op.drop_index("ix_rule_counts_minute", table_name="rule_counts")
    op.drop_table("rule_counts")
    op.drop_index("ix_traffic_counts_minute", table_name="traffic_counts")
    op.drop_table("traffic_counts")
