"""Housekeeping: expire suppressions and drop processed raw intake past its retention.

Application layer. Processed accounting batches are dropped after a day (PowerMTA's own acct
files are the replay source); raw messages are kept `raw_retention_days` so that decisions can
show their evidence and `bounceproc reprocess` can re-classify them. Per-minute event and
complaint counts are kept 35 days (the status windows need a day, complaint rates a month); the
per-batch rows of each count table are merged per minute by `compact_counts` (every sweep).
Events older than `event_retention_days` (0: kept forever) are deleted by `prune_events`, in
chunks of their own transactions and within a time budget, so a large backlog neither holds one
huge transaction nor blocks the caller for long; the next run goes on where it stopped.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import logging

import time

from sqlalchemy import delete, select

from bounceproc import bootstrap

from bounceproc.app import heartbeats, service
from bounceproc.storage.event_counts import prune_counts
from bounceproc.storage.traffic_counts import MERGE_LOOKBACK_HOURLY, fold_counts, merge_minutes
from bounceproc.storage.suppression_store import fold_suppression_counts
from bounceproc.storage.tables import events, intake
from bounceproc.config import Settings


log = logging.getLogger("bounceproc.maintenance")

COUNTS_RETENTION = timedelta(days=35)   # the longest window `bounceproc complaints` reads


def prune(conn, settings: Settings, now: datetime | None = None) -> int:
    now = now or datetime.now(timezone.utc)
    n = service.expire_suppressions(conn, now)
    n += conn.execute(delete(intake).where(intake.c.state == "done").where(intake.c.kind == "acct")
                      .where(intake.c.processed_at < now - timedelta(days=1))).rowcount or 0
    n += conn.execute(delete(intake).where(intake.c.state == "done").where(intake.c.kind == "message")
                      .where(intake.c.processed_at < now - timedelta(days=settings.raw_retention_days))
                      ).rowcount or 0
    n += prune_counts(conn, now - COUNTS_RETENTION)
    merge_minutes(conn, now, MERGE_LOOKBACK_HOURLY)
    fold_counts(conn, now)
    fold_suppression_counts(conn, now)
    heartbeats.prune(conn, now)
    return n


def compact_counts(settings: Settings, now: datetime | None = None) -> int:
    """Merge the per-batch count rows of the last settled minutes (run by the 30-second sweep, so
    the dashboard and `show status` read one row per minute and key, not one per batch). A
    failure is logged: the next sweep merges them. It takes turns with the hourly prune's merge
    (traffic_counts.lock_counts)."""
    try:
        with bootstrap.engine(settings).begin() as conn:
            return merge_minutes(conn, now or datetime.now(timezone.utc))
    except Exception as exc:
        log.warning("count rows not merged this time: %s", exc)
        return 0


def prune_events(settings: Settings, now: datetime | None = None, budget_seconds: float = 60.0,
                 chunk: int = 20_000) -> int:
    """Delete events that occurred more than `event_retention_days` ago; returns how many.

    Stops when none is left or after `budget_seconds`. Suppressions keep their evidence in their
    history, so they are not affected; per-recipient history (the API) shortens.
    """
    if settings.event_retention_days <= 0:
        return 0
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=settings.event_retention_days)
    old = select(events.c.id).where(events.c.occurred_at < cutoff).limit(chunk).scalar_subquery()
    deadline = time.monotonic() + budget_seconds
    total = 0
    for _ in range(1_000_000):                    # bounded by the deadline long before this
        with bootstrap.engine(settings).begin() as conn:
            n = conn.execute(delete(events).where(events.c.id.in_(old))).rowcount or 0
        total += n
        if n < chunk or time.monotonic() >= deadline:
            break
    return total
