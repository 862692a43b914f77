"""Tables of the operations view (dashboard, /metrics, alerts), on the shared `metadata`.

Adapter layer (SQLAlchemy Core). Created by migration 2026_12_03_01_ops_counts.

- `traffic_counts`: deliveries, hard and soft bounces, deferrals and complaints per minute of
  occurrence, receiving provider (domain/providers.py), sending domain, virtual MTA, source IP
  and job; appended with every stored batch, like `event_counts` (one row per batch and key, no
  shared counter row). The dashboard's traffic and complaint-rate panels sum these. The hourly
  prune folds rows older than two hours into 10-minute rows and rows older than two days into
  day rows (`bucket`: the seconds a row covers), so a month is a few rows per day and key.
- `rule_counts`: bounces per minute, taxonomy reason and classification rule, with one example
  diagnostic of the batch; the "top bounce reasons" panel and the classification metric.
- `alert_state`: which alert conditions are firing, so each is announced once and again when it
  clears, whichever process evaluates them.
- `worker_heartbeats` (migration 2026_12_03_02_worker_heartbeats): one row per running worker
  (a Celery worker node, or the inline worker of `bounceproc serve`), its last_seen renewed every
  few seconds; deleted when the worker stops cleanly, so a row that stops being renewed is a
  worker that died or hangs. The health panel, `show status` and /metrics read it.
"""
from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint, text

from bounceproc.storage.tables import TS, Id, metadata

traffic_counts = Table(
    "traffic_counts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("minute", TS, nullable=False),
    Column("kind", String(16), nullable=False),     # delivered|hard_bounce|soft_bounce|deferred|complained
    Column("provider", String(64), nullable=False, server_default=""),
    Column("sending_domain", String(255), nullable=False, server_default=""),
    Column("vmta", String(128), nullable=False, server_default=""),
    Column("source_ip", String(64), nullable=False, server_default=""),
    Column("job_id", String(128), nullable=False, server_default=""),
    Column("n", Integer, nullable=False),
    Column("bucket", Integer, nullable=False, server_default=text("60")),   # seconds the row covers
    Index("ix_traffic_counts_minute", "minute"),
)

rule_counts = Table(
    "rule_counts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("minute", TS, nullable=False),
    Column("reason", String(32), nullable=False, server_default=""),
    Column("rule", String(64), nullable=False, server_default=""),
    Column("n", Integer, nullable=False),
    Column("example", Text, nullable=False, server_default=""),
    Column("bucket", Integer, nullable=False, server_default=text("60")),
    Index("ix_rule_counts_minute", "minute"),
)

alert_state = Table(
    "alert_state", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert", String(32), nullable=False),        # complaint_rate|block|backlog|webhook_failing
    Column("subject", String(255), nullable=False),     # what it is about: a domain, an endpoint, ...
    Column("firing", Boolean, nullable=False),
    Column("value", Float, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("changed_at", TS, nullable=False),
    UniqueConstraint("alert", "subject", name="uq_alert_state"),
)

worker_heartbeats = Table(
    "worker_heartbeats", metadata,
    Column("worker_id", String(255), primary_key=True),     # "celery@host" (the node name), "inline@host:pid"
    Column("kind", String(16), nullable=False),              # celery|inline
    Column("hostname", String(255), nullable=False, server_default=""),
    Column("pid", Integer, nullable=False, server_default=text("0")),
    Column("started_at", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
)
