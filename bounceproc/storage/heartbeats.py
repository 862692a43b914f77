"""Worker heartbeats in the database (table `worker_heartbeats`, storage/ops_tables.py).

Adapter layer (SQLAlchemy Core). `beat` inserts or renews a worker's row, `forget` deletes it
(a clean stop), `heartbeats` lists the rows newest first, `prune_heartbeats` drops rows nobody
renewed for a long time (workers that died and never came back under the same id).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from bounceproc.storage.bulk import bulk_insert
from bounceproc.storage.ops_tables import worker_heartbeats as hb


def beat(conn, worker_id: str, kind: str, hostname: str, pid: int, started_at: datetime, now: datetime) -> None:
    bulk_insert(conn, hb, [{"worker_id": worker_id[:255], "kind": kind, "hostname": hostname[:255], "pid": pid,
                            "started_at": started_at, "last_seen": now}],
                conflict=("worker_id",), update=("kind", "hostname", "pid", "started_at", "last_seen"))


def forget(conn, worker_id: str) -> None:
    conn.execute(delete(hb).where(hb.c.worker_id == worker_id[:255]))


def heartbeats(conn, limit: int = 100) -> list[dict]:
    rows = conn.execute(select(hb).order_by(hb.c.last_seen.desc(), hb.c.worker_id).limit(limit)).mappings()
    return [dict(r) for r in rows]


def prune_heartbeats(conn, before: datetime) -> int:
    return conn.execute(delete(hb).where(hb.c.last_seen < before)).rowcount or 0
