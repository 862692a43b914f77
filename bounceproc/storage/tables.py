"""The relational schema, as SQLAlchemy Core tables shared by repositories and migrations.

Adapter layer (SQLAlchemy). Runs on PostgreSQL (production) and SQLite (embedded default).
The Alembic migrations under migrations/versions create exactly these tables; a test compares them.

Sizing notes (hundreds of millions of events):
- `events` is append-only. Its only unique index is `event_key` (idempotent replays; keys are
  time-prefixed so the index grows at its right edge); lookups are per recipient
  (recipient, occurred_at, deliveries left out) and by time (BRIN on PostgreSQL, cheap at any size);
  `message_id` is indexed only where present (FBL recipient recovery). Retention deletes by time.
- Status windows (last minute / hour / day) and complaint rates read `event_counts` and
  `complaint_counts`, a few rows per stored batch, never the events themselves; suppressions by
  reason come from `suppression_counts`, not from grouping the list.
- `intake` holds raw input until it is processed (and raw messages for their retention period);
  the partial index on pending rows keeps the sweeper's scan small.
"""
from __future__ import annotations

from datetime import timezone

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, DateTime, Index, Integer, LargeBinary, MetaData, String,
    Table, Text, UniqueConstraint, text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timestamps are stored in UTC and always read back timezone-aware (SQLite keeps no offset)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


TS = UTCDateTime()

events = Table(
    "events", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_key", String(32), nullable=False),
    Column("type", String(20), nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("recipient", String(320), nullable=False, server_default=""),
    Column("recipient_domain", String(255), nullable=False, server_default=""),
    Column("sender", String(320), nullable=False, server_default=""),
    Column("source", String(16), nullable=False),
    Column("status", String(16), nullable=False, server_default=""),
    Column("reply_code", String(8), nullable=False, server_default=""),
    Column("diagnostic", Text, nullable=False, server_default=""),
    Column("remote_mta", String(255), nullable=False, server_default=""),
    Column("reason", String(32), nullable=False, server_default=""),
    Column("category", String(32), nullable=False, server_default=""),
    Column("hard", Boolean, nullable=False, server_default=text("false")),
    Column("rule", String(64), nullable=False, server_default=""),
    Column("feedback_type", String(32), nullable=False, server_default=""),
    Column("vmta", String(128), nullable=False, server_default=""),
    Column("source_ip", String(64), nullable=False, server_default=""),
    Column("job_id", String(128), nullable=False, server_default=""),
    Column("list_id", String(255), nullable=False, server_default=""),
    Column("message_id", String(255), nullable=False, server_default=""),
    Column("intake_id", BigInteger, nullable=True),
    Column("attrs", JSON, nullable=True),
    Column("recorded_at", TS, nullable=False),
    UniqueConstraint("event_key", name="uq_events_event_key"),
    # Per-recipient history (bounces, complaints, unsubscribes...) without deliveries: deliveries are
    # ~85% of rows and nobody pages through them per recipient; leaving them out of this index
    # roughly halves the write cost of an accounting stream.
    Index("ix_events_recipient_time", "recipient", "occurred_at",
          postgresql_where=text("type <> 'delivered'"), sqlite_where=text("type <> 'delivered'")),
    Index("ix_events_time_brin", "occurred_at", postgresql_using="brin"),
    Index("ix_events_message_id", "message_id", postgresql_where=text("message_id <> ''"),
          sqlite_where=text("message_id <> ''")),
    # `bounceproc reprocess` finds a stored message's events by intake id; accounting events
    # (nearly all rows) are left out so the stream pays nothing for it.
    Index("ix_events_intake_report", "intake_id", postgresql_where=text("source IN ('dsn', 'arf')"),
          sqlite_where=text("source IN ('dsn', 'arf')")),
)

# Scope is "global", "list:<id>" or "domain:<sending domain>"; the key is (address, scope).
suppressions = Table(
    "suppressions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("address", String(320), nullable=False),
    Column("scope", String(300), nullable=False, server_default="global"),
    Column("reason", String(32), nullable=False),       # hard_bounce|soft_bounce_threshold|complaint|unsubscribe|manual|import
    Column("origin", String(16), nullable=False),       # system|recipient|operator|api
    Column("category", String(32), nullable=False, server_default=""),
    Column("bounce_reason", String(32), nullable=False, server_default=""),  # taxonomy reason of the evidence
    Column("rule", String(64), nullable=False, server_default=""),
    Column("source", String(16), nullable=False, server_default=""),         # acct|dsn|arf|api|unsubscribe|...
    Column("event_key", String(32), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default=""),
    Column("diagnostic", Text, nullable=False, server_default=""),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("expires_at", TS, nullable=True),
    UniqueConstraint("address", "scope", name="uq_suppressions_address_scope"),
    Index("ix_suppressions_created", "created_at", "id"),
    Index("ix_suppressions_expires", "expires_at", postgresql_where=text("expires_at IS NOT NULL"),
          sqlite_where=text("expires_at IS NOT NULL")),
)

suppression_history = Table(
    "suppression_history", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("address", String(320), nullable=False),
    Column("scope", String(300), nullable=False),
    Column("action", String(16), nullable=False),       # created|updated|deleted|expired
    Column("reason", String(32), nullable=False, server_default=""),
    Column("actor", String(64), nullable=False, server_default=""),
    Column("why", Text, nullable=False, server_default=""),
    Column("event_key", String(32), nullable=False, server_default=""),
    Column("evidence", JSON, nullable=True),
    Column("at", TS, nullable=False),
    Index("ix_history_address", "address", "at"),
)

# Per-recipient soft-bounce state that policy.decide() needs (one row per address with soft bounces).
soft_state = Table(
    "soft_state", metadata,
    Column("address", String(320), primary_key=True),
    Column("days", String(400), nullable=False, server_default=""),   # comma list of ISO dates with soft bounces, within the window
    Column("count", Integer, nullable=False, server_default=text("0")),
    Column("last_at", TS, nullable=False),
    Column("last_event_key", String(32), nullable=False, server_default=""),
)

# Blocks that say nothing about the address: counted per day, receiving domain, vmta/IP and reason.
block_counters = Table(
    "block_counters", metadata,
    Column("day", String(10), nullable=False),
    Column("recipient_domain", String(255), nullable=False),
    Column("vmta", String(128), nullable=False),
    Column("source_ip", String(64), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("category", String(32), nullable=False),
    Column("count", BigInteger, nullable=False, server_default=text("0")),
    Column("last_at", TS, nullable=False),
    Column("last_diagnostic", Text, nullable=False, server_default=""),
    UniqueConstraint("day", "recipient_domain", "vmta", "source_ip", "reason", "category", name="uq_block_counters"),
)

# Events counted per minute of occurrence, type and category: one row per stored batch and key,
# append-only, so concurrent workers never wait on a shared counter row. `show status`, /metrics
# and the dashboard sum a window's rows (a few per batch) instead of counting a day of events.
event_counts = Table(
    "event_counts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("minute", TS, nullable=False),
    Column("type", String(20), nullable=False),
    Column("category", String(32), nullable=False, server_default=""),
    Column("n", Integer, nullable=False),
    Index("ix_event_counts_minute", "minute"),
)

# Deliveries and complaints per minute, sending domain (envelope sender's), source IP and job, the
# same way (append-only rows per stored batch): complaint rates read these, not a day of events.
complaint_counts = Table(
    "complaint_counts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("minute", TS, nullable=False),
    Column("sending_domain", String(255), nullable=False, server_default=""),
    Column("source_ip", String(64), nullable=False, server_default=""),
    Column("job_id", String(128), nullable=False, server_default=""),
    Column("delivered", Integer, nullable=False),
    Column("complained", Integer, nullable=False),
    Index("ix_complaint_counts_minute", "minute"),
)

# Suppressions per reason, as changes (+1 created, -1 lifted or expired, -1/+1 a reason changed)
# on the UTC day they were made: appended by the transaction that makes the change, folded into
# one row per day and reason by the hourly prune (days before the last GROWTH_DAYS into day "").
# /metrics and `show status` sum a few rows instead of grouping the whole list; the dashboard's
# growth chart reads the days (migration 2026_12_03_03_suppression_by_day).
suppression_counts = Table(
    "suppression_counts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reason", String(32), nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("day", String(10), nullable=False, server_default=""),
)

# Durable intake: raw input committed before it is acknowledged. kind "acct" holds a batch of raw
# CSV lines (with the header line in effect); kind "message" holds one raw message.
intake = Table(
    "intake", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("origin", String(255), nullable=False, server_default=""),  # "pipe", "import:<path>", "sink:<peer>"
    Column("header", Text, nullable=False, server_default=""),          # acct: the CSV header line in effect
    Column("first_line", BigInteger, nullable=False, server_default=text("0")),
    Column("payload", LargeBinary, nullable=False),
    Column("meta", JSON, nullable=True),                                 # message: mail_from, rcpt_tos, peer
    Column("state", String(12), nullable=False, server_default="pending"),  # pending|done|failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("error", Text, nullable=False, server_default=""),
    Column("records", Integer, nullable=False, server_default=text("0")),
    Column("stored", Integer, nullable=False, server_default=text("0")),    # new events (not duplicates)
    Column("created_at", TS, nullable=False),
    Column("processed_at", TS, nullable=True),
    # Set by a sender that may send the same item twice (the pipe replaying its journal after a
    # crash between the intake commit and the journal delete): the second insert is a no-op.
    Column("batch_key", String(64), nullable=True),
    Index("uq_intake_batch_key", "batch_key", unique=True),
    Index("ix_intake_pending", "id", postgresql_where=text("state = 'pending'"),
          sqlite_where=text("state = 'pending'")),
    Index("ix_intake_created", "created_at"),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("intake_id", BigInteger, nullable=True),
    Column("origin", String(255), nullable=False, server_default=""),
    Column("line_no", BigInteger, nullable=True),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False, server_default=""),
    Column("created_at", TS, nullable=False),
    Column("header", Text, nullable=False, server_default=""),   # acct: CSV header in effect (for replay)
    # SHA-256 of (origin, line_no, raw): the same record of the same source is kept once, however
    # often it is imported (storage/intake_rows.quarantine_key).
    Column("raw_key", String(64), nullable=True),
    UniqueConstraint("intake_id", "line_no", name="uq_quarantine_intake_line"),
    Index("uq_quarantine_raw_key", "raw_key", unique=True),
    Index("ix_quarantine_created", "created_at"),
)

# `bounceproc import` checkpoints: how far each file has been committed to the intake.
import_checkpoints = Table(
    "import_checkpoints", metadata,
    Column("file_key", String(512), primary_key=True),   # path + inode + size-independent identity
    Column("path", Text, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("line_no", BigInteger, nullable=False),
    Column("header", Text, nullable=False, server_default=""),
    Column("updated_at", TS, nullable=False),
)

# Webhook outbox, written in the same transaction as the change that caused it.
outbox = Table(
    "outbox", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("webhook_id", String(64), nullable=False),   # "evt_..." Standard Webhooks webhook-id, stable across retries
    Column("type", String(64), nullable=False),
    Column("payload", Text, nullable=False),             # the exact JSON body
    Column("occurred_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("dispatched", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("webhook_id", name="uq_outbox_webhook_id"),
    Index("ix_outbox_undispatched", "id", postgresql_where=text("NOT dispatched"),
          sqlite_where=text("NOT dispatched")),
)
