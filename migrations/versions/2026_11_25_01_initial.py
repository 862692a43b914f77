"""Initial schema: events, suppressions and their history, soft-bounce state, block counters,
durable intake, quarantine, import checkpoints, webhook outbox.

Revision ID: 2026_11_25_01_initial
Revises: 
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '2026_11_25_01_initial'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('block_counters',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('recipient_domain', sa.String(length=255), nullable=False),
    sa.Column('vmta', sa.String(length=128), nullable=False),
    sa.Column('source_ip', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('count', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_diagnostic', sa.Text(), server_default='', nullable=False),
    sa.UniqueConstraint('day', 'recipient_domain', 'vmta', 'source_ip', 'reason', 'category', name='uq_block_counters')
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_key', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipient', sa.String(length=320), server_default='', nullable=False),
    sa.Column('recipient_domain', sa.String(length=255), server_default='', nullable=False),
    sa.Column('sender', sa.String(length=320), server_default='', nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='', nullable=False),
    sa.Column('reply_code', sa.String(length=8), server_default='', nullable=False),
    sa.Column('diagnostic', sa.Text(), server_default='', nullable=False),
    sa.Column('remote_mta', sa.String(length=255), server_default='', nullable=False),
    sa.Column('reason', sa.String(length=32), server_default='', nullable=False),
    sa.Column('category', sa.String(length=32), server_default='', nullable=False),
    sa.Column('hard', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('rule', sa.String(length=64), server_default='', nullable=False),
    sa.Column('feedback_type', sa.String(length=32), server_default='', nullable=False),
    sa.Column('vmta', sa.String(length=128), server_default='', nullable=False),
    sa.Column('source_ip', sa.String(length=64), server_default='', nullable=False),
    sa.Column('job_id', sa.String(length=128), server_default='', nullable=False),
    sa.Column('list_id', sa.String(length=255), server_default='', nullable=False),
    sa.Column('message_id', sa.String(length=255), server_default='', nullable=False),
    sa.Column('intake_id', sa.BigInteger(), nullable=True),
    sa.Column('attrs', sa.JSON(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_key', name='uq_events_event_key')
    )
    op.create_index('ix_events_message_id', 'events', ['message_id'], unique=False, postgresql_where=sa.text("message_id <> ''"), sqlite_where=sa.text("message_id <> ''"))
    op.create_index('ix_events_recipient_time', 'events', ['recipient', 'occurred_at'], unique=False, postgresql_where=sa.text("type <> 'delivered'"), sqlite_where=sa.text("type <> 'delivered'"))
    op.create_index('ix_events_time_brin', 'events', ['occurred_at'], unique=False, postgresql_using='brin')
    op.create_table('import_checkpoints',
    sa.Column('file_key', sa.String(length=512), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('line_no', sa.BigInteger(), nullable=False),
    sa.Column('header', sa.Text(), server_default='', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('file_key')
    )
    op.create_table('intake',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=255), server_default='', nullable=False),
    sa.Column('header', sa.Text(), server_default='', nullable=False),
    sa.Column('first_line', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.Column('state', sa.String(length=12), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.Column('records', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_intake_created', 'intake', ['created_at'], unique=False)
    op.create_index('ix_intake_pending', 'intake', ['id'], unique=False, postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('webhook_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispatched', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('webhook_id', name='uq_outbox_webhook_id')
    )
    op.create_index('ix_outbox_undispatched', 'outbox', ['id'], unique=False, postgresql_where=sa.text('NOT dispatched'), sqlite_where=sa.text('NOT dispatched'))
    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('intake_id', sa.BigInteger(), nullable=True),
    sa.Column('origin', sa.String(length=255), server_default='', nullable=False),
    sa.Column('line_no', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('intake_id', 'line_no', name='uq_quarantine_intake_line')
    )
    op.create_index('ix_quarantine_created', 'quarantine', ['created_at'], unique=False)
    op.create_table('soft_state',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('days', sa.String(length=400), server_default='', nullable=False),
    sa.Column('count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_key', sa.String(length=32), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('address')
    )
    op.create_table('suppression_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('scope', sa.String(length=300), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), server_default='', nullable=False),
    sa.Column('actor', sa.String(length=64), server_default='', nullable=False),
    sa.Column('why', sa.Text(), server_default='', nullable=False),
    sa.Column('event_key', sa.String(length=32), server_default='', nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_history_address', 'suppression_history', ['address', 'at'], unique=False)
    op.create_table('suppressions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('scope', sa.String(length=300), server_default='global', nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=32), server_default='', nullable=False),
    sa.Column('bounce_reason', sa.String(length=32), server_default='', nullable=False),
    sa.Column('rule', sa.String(length=64), server_default='', nullable=False),
    sa.Column('source', sa.String(length=16), server_default='', nullable=False),
    sa.Column('event_key', sa.String(length=32), server_default='', nullable=False),
    sa.Column('status', sa.String(length=16), server_default='', nullable=False),
    sa.Column('diagnostic', sa.Text(), server_default='', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('address', 'scope', name='uq_suppressions_address_scope')
    )
    op.create_index('ix_suppressions_created', 'suppressions', ['created_at', 'id'], unique=False)
    op.create_index('ix_suppressions_expires', 'suppressions', ['expires_at'], unique=False, postgresql_where=sa.text('expires_at IS NOT NULL'), sqlite_where=sa.text('expires_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_suppressions_expires', table_name='suppressions', postgresql_where=sa.text('expires_at IS NOT NULL'), sqlite_where=sa.text('expires_at IS NOT NULL'))
    op.drop_index('ix_suppressions_created', table_name='suppressions')
    op.drop_table('suppressions')
    op.drop_index('ix_history_address', table_name='suppression_history')
    op.drop_table('suppression_history')
    op.drop_table('soft_state')
    op.drop_index('ix_quarantine_created', table_name='quarantine')
    op.drop_table('quarantine')
    op.drop_index('ix_outbox_undispatched', table_name='outbox', postgresql_where=sa.text('NOT dispatched'), sqlite_where=sa.text('NOT dispatched'))
    op.drop_table('outbox')
    op.drop_index('ix_intake_pending', table_name='intake', postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
    op.drop_index('ix_intake_created', table_name='intake')
    op.drop_table('intake')
    op.drop_table('import_checkpoints')
    op.drop_index('ix_events_time_brin', table_name='events', postgresql_using='brin')
    op.drop_index('ix_events_recipient_time', table_name='events')
    op.drop_index('ix_events_message_id', table_name='events', postgresql_where=sa.text("message_id <> ''"), sqlite_where=sa.text("message_id <> ''"))
    op.drop_table('events')
    op.drop_table('block_counters')
