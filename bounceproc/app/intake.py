"""The durable intake -> recorded events: one row at a time, or a batch of messages at once.

Application layer. `process_intake` wraps one intake row (an acct batch or a raw message) in one
transaction: parse it, record its events through service.record_events, mark it done.
`process_messages` is the worker's fast path for many message rows (see its docstring). The
dispatcher that bootstrap.enqueue_intake calls in the embedded mode is built from these by the
entrypoints; bootstrap itself never imports this module.
"""
from __future__ import annotations

import gc
import logging
import random
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DataError

from bounceproc.app import message_intake, service
from bounceproc.bootstrap import engine
from bounceproc.config import Settings
from bounceproc.domain.events import Event
from bounceproc.domain.parse.acct import Quarantined
from bounceproc.domain.storable import has_unstorable, storable_value
from bounceproc.storage import json_text
from bounceproc.storage.intake_rows import insert_quarantine, pending_kinds, pending_rows
from bounceproc.storage.tables import intake

log = logging.getLogger("bounceproc.app.intake")

MAX_ATTEMPTS = 5
TRANSIENT_RETRIES = 3


def _events_of(conn, row, settings: Settings):
    if row.kind == "acct":
        from bounceproc.domain.parse.acct import parse_acct_batch
        arrival = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
        return parse_acct_batch(row.header or "", bytes(row.payload), int(row.first_line or 1),
                                service.classifier_for(settings), service.verp_format(settings), arrival)
    if row.kind == "message":
        return message_intake.events_from_message(conn, row, settings), []
    raise ValueError(f"unknown intake kind {row.kind!r}")


def is_transient_db_error(exc: BaseException) -> bool:
    """Deadlock / serialization failure (PostgreSQL) or a busy SQLite file: worth retrying at once."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", "") in ("40P01", "40001"):
        return True
    return "database is locked" in str(orig or "")


def process_intake(settings: Settings, intake_id: int) -> service.RecordResult | None:
    """Process one intake row in one transaction. Safe to call twice: a done row is skipped.

    A deadlock or serialization failure with a concurrent worker is retried at once (a few times);
    any other failure is recorded on the row (attempts, error) for the sweep to retry later.
    """
    for attempt in range(TRANSIENT_RETRIES + 1):
        try:
            return _process_intake_once(settings, intake_id)
        except Exception as exc:
            if attempt < TRANSIENT_RETRIES and is_transient_db_error(exc):
                time.sleep(random.uniform(0.01, 0.1) * (attempt + 1))
                continue
            log.exception("intake %s failed", intake_id)
            with engine(settings).begin() as conn:
                conn.execute(update(intake).where(intake.c.id == intake_id).values(
                    attempts=intake.c.attempts + 1, error=f"{type(exc).__name__}: {exc}"[:2000]))
                conn.execute(update(intake).where(intake.c.id == intake_id)
                             .where(intake.c.attempts >= MAX_ATTEMPTS).values(state="failed"))
            raise
    return None  # pragma: no cover - the loop returns or raises


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector for one batch (restored after).

    A 5,000-record batch allocates ~100,000 acyclic objects (events, rows, strings); the
    collector's generation scans over them cost ~20% of a worker's CPU and free nothing that
    reference counting does not free when the batch ends.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _process_intake_once(settings: Settings, intake_id: int) -> service.RecordResult | None:
    # The batch's objects are freed when _process_intake_txn returns, before the collector is
    # back: otherwise its first pass would scan every one of them.
    with gc_paused():
        try:
            return _process_intake_txn(settings, intake_id)
        except DataError:
            # The database refused a value (a NUL, a lone surrogate from a parser we did not
            # foresee): once more, with every event holding such a value quarantined, so one
            # record never blocks the rest of its batch (issue 13, item 2).
            log.warning("intake %s: a value could not be stored; quarantining such events", intake_id)
            return _process_intake_txn(settings, intake_id, salvage=True)


def _unstorable_events(evs: list[Event]) -> tuple[list[Event], list[Quarantined]]:
    """Split off the events holding a value no text column can store, as quarantine items
    (line_no -1, -2, ... by position: stable if the row is processed again)."""
    keep, bad = [], []
    for i, e in enumerate(evs):
        values = {f: getattr(e, f) for f in e.__slots__ if isinstance(getattr(e, f), str)}
        if any(has_unstorable(v) for v in values.values()) or has_unstorable(repr(e.attrs)):
            values["attrs"] = storable_value(e.attrs)
            bad.append(Quarantined(-(i + 1), "a value no text column can store (NUL or lone surrogate; escaped here)",
                                   json_text.dumps(storable_value(values))))
        else:
            keep.append(e)
    return keep, bad


def _process_intake_txn(settings: Settings, intake_id: int, salvage: bool = False) -> service.RecordResult | None:
    with engine(settings).begin() as conn:
        rows = pending_rows(conn, [intake_id])
        if not rows:
            return None
        row = rows[0]
        evs, quarantined = _events_of(conn, row, settings)
        if salvage:
            evs, unstorable = _unstorable_events(evs)
            quarantined = list(quarantined) + unstorable
        insert_quarantine(conn, row.id, row.origin, ((q.line_no, q.reason, q.raw) for q in quarantined),
                          header=row.header or "")
        res = service.record_events(conn, evs, settings, intake_id=row.id)
        res.quarantined = len(quarantined)
        conn.execute(update(intake).where(intake.c.id == row.id).values(
            state="done", processed_at=datetime.now(timezone.utc), records=len(evs) + len(quarantined),
            stored=res.new_events, attempts=intake.c.attempts + 1, error=""))
        log.info("intake %s: %s batch of %d records: %d stored, %d duplicates, %d quarantined, %d suppressed",
                 row.id, row.kind, len(evs) + len(quarantined), res.new_events, len(evs) - res.new_events,
                 len(quarantined), res.suppressed)
        return res


def pending_intake_ids(settings: Settings, older_than_seconds: int, limit: int = 1000) -> list[int]:
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)
    with engine(settings).connect() as conn:
        return list(conn.execute(
            select(intake.c.id).where(intake.c.state == "pending").where(intake.c.created_at <= cutoff)
            .order_by(intake.c.id).limit(limit)).scalars())


def _process_message_batch(conn, settings, ids: list[int]) -> int:
    """The message rows among `ids`, in the caller's transaction; returns how many."""
    rows = [r for r in pending_rows(conn, ids) if r.kind == "message"]
    prepared = [(r, message_intake.prepare(conn, r, settings)) for r in rows]
    mids = [m for _, p in prepared if p is not None for m in message_intake.original_ids(p)]
    sent = message_intake.lookup_sent(conn, mids) if mids else {}
    evs, counts, by_row = [], [], []
    for r, p in prepared:
        row_events = message_intake.message_events(conn, r, p, sent) if p else []
        evs.extend(row_events)
        counts.append({"rid": r.id, "n": len(row_events)})
        by_row.append((r.id, p[0][0].kind if p else "unreadable", row_events))
    res = service.record_events(conn, evs, settings)
    if log.isEnabledFor(logging.INFO):
        message_intake.log_outcomes(by_row, {k[0] for k in res.keys_created})
    if counts:
        conn.execute(update(intake).where(intake.c.id == bindparam("rid")).values(
            state="done", processed_at=datetime.now(timezone.utc), records=bindparam("n"),
            attempts=intake.c.attempts + 1, error=""), counts)
    return len(rows)


def process_messages(settings, intake_ids) -> int:
    """Process many message intake rows in ONE transaction (the worker's fast path).

    Same result as process_intake on each id, at a fixed number of statements per batch:
    one select (rows locked, SKIP LOCKED on PostgreSQL so two workers never share a row), one
    Message-ID lookup, one record_events, one update. Rows of other kinds (acct batches) go
    through process_intake, one transaction each; their kind is looked up first, so an
    acct batch's payload is read once. If anything in the message batch fails, each row is
    retried on its own through process_intake, so one bad message cannot hold the others
    back. Rows already done are left alone. Returns the number of rows processed.
    """
    ids = sorted({int(i) for i in intake_ids})
    if not ids:
        return 0
    eng = engine(settings)
    with eng.connect() as conn:
        kinds = pending_kinds(conn, ids)
    others = [i for i, k in kinds.items() if k != "message"]
    messages = [i for i, k in kinds.items() if k == "message"]
    done = 0
    if messages:
        try:
            with eng.begin() as conn:
                done = _process_message_batch(conn, settings, messages)
        except Exception:
            log.exception("batch of %d messages failed; processing them one by one", len(messages))
            others = sorted(others + messages)
    for i in others:
        try:
            if process_intake(settings, i) is not None:
                done += 1
        except Exception:  # recorded on the row (attempts, error); the sweep retries it
            log.warning("intake %s failed on its own too", i)
    return done
