"""Intake rows sent twice count once (intake.batch_key); an index for reprocessing by intake.

Revision ID: 2026_11_25_05_intake_once
Revises: 2026_11_25_04_intake_lz4

- intake.batch_key (nullable, unique): the pipe names each journalled batch; a batch re-sent
  after a crash between its intake commit and its journal delete is recognised and not stored
  again (before, it became a second intake row: events deduplicated, quarantine rows did not).
- ix_events_intake_report: events of stored messages (source dsn/arf) by intake id, for
  `bounceproc reprocess`; accounting events are not in it.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_25_05_intake_once"
down_revision = "2026_11_25_04_intake_lz4"
branch_labels = None
depends_on = None

_REPORTS = "source IN ('dsn', 'arf')"


def upgrade() -> None:
    op.add_column("intake", sa.Column("batch_key", sa.String(length=64), nullable=True))
    op.create_index("uq_intake_batch_key", "intake", ["batch_key"], unique=True)
    op.create_index("ix_events_intake_report", "events", ["intake_id"], unique=False,
                    postgresql_where=sa.text(_REPORTS), sqlite_where=sa.text(_REPORTS))


def downgrade() -> None:
    op.drop_index("ix_events_intake_report", table_name="events")
    op.drop_index("uq_intake_batch_key", table_name="intake")
    with op.batch_alter_table("intake") as batch:
        batch.drop_column("batch_key")
