"""Housekeeping: expire suppressions and drop processed raw intake past its retention.

Application layer. Processed accounting batches are dropped after a day (PowerMTA's own acct
files are the replay source); raw messages are kept `raw_retention_days` so that decisions can
show their evidence and `bounceproc reprocess` can re-classify them. Per-minute event and
complaint counts are kept 35 days (the status windows need a day, complaint rates a month).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete

from bounceproc import service
from bounceproc.adapters.event_counts import prune_counts
from bounceproc.adapters.tables import intake
from bounceproc.config import Settings


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
    return n
