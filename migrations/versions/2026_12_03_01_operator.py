"""Operator views (issue 14): the CSV header in effect for a quarantined accounting record, so that
`bounceproc quarantine replay` can re-read it after its intake batch has been pruned (processed
batches go after a day); and, per intake row, how many new events it stored, so that `pipe` and
`import` end with "stored / duplicates skipped / quarantined".

Revision ID: 2026_12_03_01_operator
Revises: 2026_11_25_06_event_counts
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_12_03_01_operator"
down_revision = "2026_12_03_01_ops_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("header", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("intake") as batch:
        batch.add_column(sa.Column("stored", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.execute("UPDATE quarantine SET header = (SELECT intake.header FROM intake WHERE intake.id = quarantine.intake_id) "
               "WHERE intake_id IN (SELECT id FROM intake WHERE kind = 'acct')")


def downgrade() -> None:
    with op.batch_alter_table("intake") as batch:
        batch.drop_column("stored")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("header")
