"""API keys, webhook endpoints, deliveries and their attempt log, import jobs, idempotency keys.

Revision ID: 2026_11_25_03_api
Revises: 2026_11_25_02_sink
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_25_03_api"
down_revision = "2026_11_25_02_sink"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("secrets", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("disabled_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("failing_since", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("endpoint_id", name="uq_webhook_endpoints_endpoint_id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.BigInteger, nullable=False),
        sa.Column("outbox_id", sa.BigInteger, nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.UniqueConstraint("endpoint_id", "outbox_id", name="uq_webhook_deliveries_endpoint_outbox"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("state = 'pending'"),
                    sqlite_where=sa.text("state = 'pending'"))
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.BigInteger, nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("response_snippet", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"])
    op.create_table(
        "import_jobs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="queued"),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("default_scope", sa.String(300), nullable=False, server_default="global"),
        sa.Column("actor", sa.String(64), nullable=False, server_default=""),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.Column("total", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("changed", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("failed", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("errors", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.UniqueConstraint("job_id", name="uq_import_jobs_job_id"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("api_key_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("import_jobs")
    op.drop_index("ix_webhook_attempts_delivery", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_endpoint", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("api_keys")
