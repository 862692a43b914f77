"""Worker heartbeats: one row per running worker (a Celery worker node, or the inline worker of
`bounceproc serve`), renewed every few seconds, read by the health panel, `show status` and /metrics.

Revision ID: 2026_12_03_02_worker_heartbeats
Revises: 2026_12_03_02_quarantine_once
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_12_03_02_worker_heartbeats"
down_revision = "2026_12_03_02_quarantine_once"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hostname", sa.String(length=255), server_default="", nullable=False),
        sa.Column("pid", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
