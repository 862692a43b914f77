"""Worker heartbeats: every worker process says it is alive every HEARTBEAT_SECONDS; one not
heard from for STALE_SECONDS is flagged stale on the health panel, in `show status` and on /metrics.

Application layer. Two kinds of workers beat, into the database table `worker_heartbeats`
(storage/heartbeats.py), not into Redis, so that both kinds look the same, with or without a
broker, and every API process reads the same list:
- a Celery worker node: a thread of its main process, started when the worker is ready, its row
  deleted at a clean shutdown (workers/celery_app.py); id = the node name (`celery@host`), so a
  worker restarted under the same name takes its row back;
- the inline worker of `bounceproc serve` (embedded default): its own loop beats between
  batches, so a loop stuck on one batch stops beating; id `inline@host:pid`.
A row nobody renews is left in place (that is the signal) and dropped by the hourly prune after
FORGET_AFTER.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

from bounceproc import bootstrap
from bounceproc.config import Settings
from bounceproc.storage import heartbeats as store

log = logging.getLogger("bounceproc.heartbeat")

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60          # six missed beats
FORGET_AFTER = timedelta(days=1)


class Heartbeat:
    """One worker's heartbeat. `beat()` renews the row when due (call it from the worker's loop),
    `start_thread()` beats from a thread instead, `stop()` ends the thread and deletes the row."""

    def __init__(self, settings: Settings, kind: str, worker_id: str | None = None, engine=None) -> None:
        self.settings, self.kind = settings, kind
        self.hostname, self.pid = socket.gethostname(), os.getpid()
        self.worker_id = worker_id or f"{kind}@{self.hostname}:{self.pid}"
        self.started_at = datetime.now(timezone.utc)
        self._engine = engine
        self._due = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _eng(self):
        return self._engine if self._engine is not None else bootstrap.engine(self.settings)

    def beat(self, force: bool = False) -> bool:
        """Renew the row if HEARTBEAT_SECONDS have passed (or `force`); True when written. A
        database error is logged and retried at the next beat: it never stops the worker."""
        now = time.monotonic()
        if not force and now < self._due:
            return False
        self._due = now + HEARTBEAT_SECONDS
        try:
            with self._eng().begin() as conn:
                store.beat(conn, self.worker_id, self.kind, self.hostname, self.pid, self.started_at,
                           datetime.now(timezone.utc))
        except Exception as exc:
            log.warning("heartbeat of %s not recorded: %s", self.worker_id, exc)
            return False
        return True

    def start_thread(self) -> "Heartbeat":
        def run() -> None:
            while not self._stopping.is_set():
                self.beat(force=True)
                self._stopping.wait(HEARTBEAT_SECONDS)
        self._thread = threading.Thread(target=run, name=f"heartbeat {self.worker_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """A clean stop: no more beats, and the row goes (a stopped worker is not a stale one)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_SECONDS + 5)
        try:
            with self._eng().begin() as conn:
                store.forget(conn, self.worker_id)
        except Exception as exc:
            log.warning("heartbeat of %s not removed: %s", self.worker_id, exc)


def workers(conn, now: datetime) -> list[dict]:
    """The workers that beat, stale ones first, then the most recently seen."""
    out = []
    for r in store.heartbeats(conn):
        age = max(0, int((now - r["last_seen"]).total_seconds()))
        out.append({"worker": r["worker_id"], "kind": r["kind"], "hostname": r["hostname"], "pid": r["pid"],
                    "started_at": r["started_at"].isoformat(timespec="seconds"),
                    "last_seen": r["last_seen"].isoformat(timespec="seconds"), "age_seconds": age,
                    "stale": age > STALE_SECONDS})
    out.sort(key=lambda w: (not w["stale"], w["age_seconds"], w["worker"]))
    return out


def prune(conn, now: datetime) -> int:
    return store.prune_heartbeats(conn, now - FORGET_AFTER)
