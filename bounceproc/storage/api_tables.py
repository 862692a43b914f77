"""Tables of the HTTP API and the webhook sender, on the shared `metadata`.

Adapter layer (SQLAlchemy Core). Created by migration 2026_11_25_03_api on PostgreSQL and SQLite.

- `api_keys`: only the SHA-256 of a key is stored; `key_id` is its public prefix for logs.
- `webhook_endpoints`: `secrets` is a JSON list of {"secret", "expires_at"}; every unexpired
  secret signs during a rotation. The secret must be readable to sign, so it is not hashed.
- `webhook_deliveries`: one row per (endpoint, outbox row), written by the fan-out; the unique key
  makes the fan-out idempotent. The partial index on pending rows keeps the due-scan small.
- `webhook_attempts`: the delivery log, one row per HTTP attempt (status, latency, snippet).
- `import_jobs`: CSV imports run in the background; the upload is kept until the job is done.
- `idempotency_keys`: first response of a write sent with `Idempotency-Key`, per API key.
"""
from __future__ import annotations

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, Index, Integer, LargeBinary, String, Table, Text,
    UniqueConstraint, text,
)

from bounceproc.storage.tables import TS, Id, metadata

api_keys = Table(
    "api_keys", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key_id", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("scopes", String(200), nullable=False),          # space-separated
    Column("name", String(200), nullable=False, server_default=""),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    UniqueConstraint("key_id", name="uq_api_keys_key_id"),
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
)

webhook_endpoints = Table(
    "webhook_endpoints", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", JSON, nullable=False),             # list of types; [] = every type
    Column("description", Text, nullable=False, server_default=""),
    Column("secrets", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_reason", Text, nullable=False, server_default=""),
    Column("failing_since", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("endpoint_id", name="uq_webhook_endpoints_endpoint_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint_id", BigInteger, nullable=False),
    Column("outbox_id", BigInteger, nullable=False),
    Column("webhook_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("state", String(12), nullable=False, server_default="pending"),  # pending|delivered|failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", TS, nullable=False),
    Column("locked_until", TS, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", TS, nullable=False),
    Column("delivered_at", TS, nullable=True),
    UniqueConstraint("endpoint_id", "outbox_id", name="uq_webhook_deliveries_endpoint_outbox"),
    Index("ix_webhook_deliveries_due", "next_attempt_at",
          postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
)

webhook_attempts = Table(
    "webhook_attempts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("attempted_at", TS, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False, server_default=text("0")),
    Column("error", Text, nullable=False, server_default=""),
    Column("response_snippet", Text, nullable=False, server_default=""),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

import_jobs = Table(
    "import_jobs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", String(40), nullable=False),
    Column("state", String(12), nullable=False, server_default="queued"),   # queued|running|done|failed
    Column("action", String(8), nullable=False),                            # add|remove
    Column("default_scope", String(300), nullable=False, server_default="global"),
    Column("actor", String(64), nullable=False, server_default=""),
    Column("payload", LargeBinary, nullable=True),
    Column("total", Integer, nullable=False, server_default=text("0")),
    Column("changed", Integer, nullable=False, server_default=text("0")),
    Column("unchanged", Integer, nullable=False, server_default=text("0")),
    Column("failed", Integer, nullable=False, server_default=text("0")),
    Column("errors", JSON, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
    UniqueConstraint("job_id", name="uq_import_jobs_job_id"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("api_key_id", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)
