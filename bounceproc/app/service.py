"""The one use case: record events, decide what they mean, and persist the consequences.

Application layer: calls the pure domain (parsers, policy) and the SQL adapters; knows nothing of
Celery, SMTP or HTTP. Everything for one batch happens in the caller's transaction:
1. insert events, skipping known event_keys (replays are harmless);
2. load the soft-bounce state of the recipients concerned (locked on PostgreSQL);
3. policy.decide() per new event, in time order;
4. create suppressions (+ history), save soft states, bump block counters;
5. write webhook outbox rows (of the types some enabled endpoint subscribes to), delivered after
   commit by their own task.
`process_intake` wraps one durable-intake row: parse it, record its events, mark it done.
"""
from __future__ import annotations

import gc
import logging
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bounceproc import bootstrap
from bounceproc.storage import suppression_store as store
from bounceproc.storage.event_store import insert_events
from bounceproc.storage.intake_rows import pending_rows
from bounceproc.storage.tables import intake, quarantine, suppressions
from bounceproc.config import Settings
from bounceproc.domain import policy
from bounceproc.domain.events import Event

log = logging.getLogger("bounceproc.app.service")

MAX_ATTEMPTS = 5
TRANSIENT_RETRIES = 3
MANUAL_ORIGINS = ("api", "operator")


@dataclass
class RecordResult:
    events: int = 0
    new_events: int = 0
    suppressed: int = 0
    soft_counted: int = 0
    blocks: int = 0
    outbox: int = 0
    quarantined: int = 0
    keys_created: set = field(default_factory=set, repr=False)


def params_of(settings: Settings) -> policy.PolicyParams:
    return policy.PolicyParams(settings.soft_bounce_threshold, settings.soft_bounce_window_days,
                               settings.soft_suppression_days)


def _evidence(e: Event) -> dict:
    return {"type": e.type, "source": e.source, "status": e.status, "reply_code": e.reply_code,
            "diagnostic": e.diagnostic[:2000], "remote_mta": e.remote_mta, "reason": e.reason,
            "category": e.category, "rule": e.rule, "feedback_type": e.feedback_type,
            "vmta": e.vmta, "source_ip": e.source_ip, "job_id": e.job_id,
            "message_id": e.message_id, "occurred_at": e.occurred_at.isoformat()}


def _webhook_data(e: Event, scope: str) -> dict:
    data = {"address": e.recipient, "scope": scope,
            "source": {"kind": e.source, "event_id": e.event_key}}
    if e.type in ("bounced", "deferred"):
        data.update(reason=e.reason, category=e.category, status=e.status, reply_code=e.reply_code,
                    diagnostic=e.diagnostic[:1000], rule=e.rule, message_id=e.message_id,
                    remote_mta=e.remote_mta)
    elif e.type == "complained":
        data.update(feedback_type=e.feedback_type, user_agent=e.attrs.get("user_agent", ""),
                    arrival_date=e.attrs.get("arrival_date", ""),
                    reporting_domain=e.attrs.get("reported_domain", ""), list_id=e.list_id)
    elif e.type == "unsubscribed":
        data.update(method=e.attrs.get("method", e.source), list_id=e.list_id)
    return data


def record_events(conn, evs: list[Event], settings: Settings, intake_id: int | None = None) -> RecordResult:
    res = RecordResult(events=len(evs))
    if not evs:
        return res
    new_keys = insert_events(conn, evs, intake_id)
    res.new_events = len(new_keys)
    if len(new_keys) == len(evs):      # all new (the usual case), hence all distinct
        fresh = list(evs)
    else:
        seen: set[str] = set()
        fresh = []
        for e in evs:
            if e.event_key in new_keys and e.event_key not in seen:
                seen.add(e.event_key)
                fresh.append(e)
    if not fresh:
        return res
    fresh.sort(key=lambda e: e.occurred_at)
    params = params_of(settings)
    now = datetime.now(timezone.utc)

    stateful = {e.recipient for e in fresh if e.recipient and e.type in ("delivered", "bounced")}
    stored = store.load_soft_states(conn, stateful) if stateful else {}
    states = {a: policy.SoftState(tuple(d.split(",")) if d else ()) for a, d in stored.items()}
    changed: dict[str, tuple[str, datetime, str]] = {}
    wanted: dict[tuple[str, str], tuple[Event, policy.Decision]] = {}
    blocks: dict[tuple, tuple[int, datetime, str]] = {}
    outbox_rows: list[dict] = []
    subscribed = store.webhook_subscribed(conn)

    noop = policy.NOOP_WITHOUT_STATE
    for e in fresh:
        if e.type in noop and e.recipient not in states:
            continue                   # most of a stream: a delivery to a recipient in good standing
        state = states.get(e.recipient, policy.EMPTY)
        new_state, d = policy.decide(state, e, params)
        if new_state is not state and new_state != state:
            states[e.recipient] = new_state
            changed[e.recipient] = (",".join(new_state.days), e.occurred_at, e.event_key)
        if d.action == "none":
            continue
        if d.action == "suppress":
            wanted.setdefault((e.recipient, d.scope), (e, d))
        elif d.action == "soft_count":
            res.soft_counted += 1
        elif d.action == "block_count":
            key = (e.occurred_at.date().isoformat(), e.recipient_domain or e.attrs.get("queue_domain", ""),
                   e.vmta, e.source_ip, e.reason, e.category)
            n, _, _ = blocks.get(key, (0, e.occurred_at, ""))
            blocks[key] = (n + 1, e.occurred_at, e.diagnostic)
            res.blocks += 1
        for wtype in d.webhooks:
            if subscribed(wtype):
                outbox_rows.append(store.outbox_row(store.webhook_id_for(e.event_key, wtype), wtype,
                                                    e.occurred_at, _webhook_data(e, d.scope), now))

    if wanted:
        rows = []
        for (addr, scope), (e, d) in wanted.items():
            rows.append({"address": addr, "scope": scope, "reason": d.suppression_reason,
                         "origin": d.origin, "category": e.category, "bounce_reason": e.reason,
                         "rule": e.rule, "source": e.source, "event_key": e.event_key,
                         "status": e.status, "diagnostic": e.diagnostic[:4000], "note": d.why,
                         "created_at": e.occurred_at if e.occurred_at < now else now,
                         "updated_at": now, "expires_at": d.expires_at})
        created = store.insert_suppressions(conn, rows)
        res.suppressed = len(created)
        res.keys_created = created
        hist = []
        for key in created:
            e, d = wanted[key]
            hist.append({"address": key[0], "scope": key[1], "action": "created",
                         "reason": d.suppression_reason, "actor": f"policy:{e.source}", "why": d.why,
                         "event_key": e.event_key, "evidence": _evidence(e), "at": now})
            if subscribed("recipient.suppressed"):
                data = _webhook_data(e, key[1])
                data.update(suppression_reason=d.suppression_reason, why=d.why,
                            expires_at=d.expires_at.isoformat() if d.expires_at else None)
                outbox_rows.append(store.outbox_row(store.webhook_id_for(e.event_key, "recipient.suppressed"),
                                                    "recipient.suppressed", e.occurred_at, data, now))
        store.insert_history(conn, hist)
    if changed:
        store.save_soft_states(conn, changed)
    if blocks:
        first_today = store.bump_block_counters(conn, blocks)
        for key in first_today if subscribed("domain.blocked") else ():
            day, domain, vmta, ip, reason, category = key
            n, last_at, diag = blocks[key]
            outbox_rows.append(store.outbox_row(
                store.webhook_id_for("|".join(key), "domain.blocked"), "domain.blocked", last_at,
                {"day": day, "recipient_domain": domain, "vmta": vmta, "source_ip": ip,
                 "reason": reason, "category": category, "diagnostic": diag[:1000]}, now))
    res.outbox = store.insert_outbox(conn, outbox_rows, subscribed)
    return res


@lru_cache(maxsize=4)
def _classifier(rules_file: str):
    from bounceproc.domain.classify import load_classifier
    return load_classifier(rules_file).classify


def verp_format(settings: Settings):
    """The VERP format the settings name (verp_separator, verp_prefix)."""
    from bounceproc.domain.parse.verp import for_settings
    return for_settings(settings.verp_separator, settings.verp_prefix)


def classifier_for(settings: Settings):
    """The classify callable to use: the default rules, or the user's rules file on top."""
    return _classifier(settings.rules_file) if settings.rules_file else None


def _events_of(conn, row, settings: Settings):
    if row.kind == "acct":
        from bounceproc.domain.parse.acct import parse_acct_batch
        return parse_acct_batch(row.header or "", bytes(row.payload), int(row.first_line or 1),
                                classifier_for(settings), verp_format(settings))
    if row.kind == "message":
        from bounceproc.app.message_intake import events_from_message
        return events_from_message(conn, row, settings), []
    raise ValueError(f"unknown intake kind {row.kind!r}")


def _quarantine(conn, row, items) -> None:
    if not items:
        return
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    now = datetime.now(timezone.utc)
    rows = [{"intake_id": row.id, "origin": row.origin, "line_no": q.line_no, "reason": q.reason[:2000],
             "raw": q.raw[:8000], "created_at": now, "header": row.header or ""} for q in items]
    conn.execute(ins(quarantine).on_conflict_do_nothing(index_elements=["intake_id", "line_no"]), rows)


def is_transient_db_error(exc: BaseException) -> bool:
    """Deadlock / serialization failure (PostgreSQL) or a busy SQLite file: worth retrying at once."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", "") in ("40P01", "40001"):
        return True
    return "database is locked" in str(orig or "")


def process_intake(settings: Settings, intake_id: int) -> RecordResult | None:
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
            with bootstrap.engine(settings).begin() as conn:
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


def _process_intake_once(settings: Settings, intake_id: int) -> RecordResult | None:
    # The batch's objects are freed when _process_intake_txn returns, before the collector is
    # back: otherwise its first pass would scan every one of them.
    with gc_paused():
        return _process_intake_txn(settings, intake_id)


def _process_intake_txn(settings: Settings, intake_id: int) -> RecordResult | None:
    with bootstrap.engine(settings).begin() as conn:
        rows = pending_rows(conn, [intake_id])
        if not rows:
            return None
        row = rows[0]
        evs, quarantined = _events_of(conn, row, settings)
        _quarantine(conn, row, quarantined)
        res = record_events(conn, evs, settings, intake_id=row.id)
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
    with bootstrap.engine(settings).connect() as conn:
        return list(conn.execute(
            select(intake.c.id).where(intake.c.state == "pending").where(intake.c.created_at <= cutoff)
            .order_by(intake.c.id).limit(limit)).scalars())


# -- manual changes (API, CLI): suppress and lift, with history and webhooks ---------------------

def suppress(conn, address: str, scope: str, reason: str, origin: str, actor: str, note: str = "",
             expires_at: datetime | None = None, event_key: str = "") -> bool:
    """Upsert a manual suppression. Returns True if it was created (False: already present)."""
    now = datetime.now(timezone.utc)
    created = store.insert_suppressions(conn, [{
        "address": address, "scope": scope, "reason": reason, "origin": origin, "category": "",
        "bounce_reason": "", "rule": "", "source": origin, "event_key": event_key, "status": "",
        "diagnostic": "", "note": note, "created_at": now, "updated_at": now, "expires_at": expires_at}])
    if not created:
        # An entry made by hand (API, CLI, import) belongs to its caller, reason included; one the
        # policy made keeps its reason and evidence (a manual PUT must not turn a complaint or a
        # hard bounce into "manual"), only its note and expiry change.
        values = {"expires_at": expires_at, "note": note or suppressions.c.note, "updated_at": now}
        current = store.get_suppression(conn, address, scope, lock=True)
        if current is not None and current["origin"] in MANUAL_ORIGINS:
            values.update(reason=reason, origin=origin)
            if current["reason"] != reason:
                store.count_suppressions(conn, {current["reason"]: -1, reason: 1})
        conn.execute(update(suppressions).where(suppressions.c.address == address)
                     .where(suppressions.c.scope == scope).values(**values))
    store.insert_history(conn, [{"address": address, "scope": scope,
                                 "action": "created" if created else "updated", "reason": reason,
                                 "actor": actor, "why": note, "event_key": event_key,
                                 "evidence": None, "at": now}])
    if created:
        data = {"address": address, "scope": scope, "suppression_reason": reason, "why": note,
                "source": {"kind": origin, "event_id": event_key}, "actor": actor}
        store.insert_outbox(conn, [store.outbox_row(store.new_webhook_id(), "recipient.suppressed",
                                                    now, data, now)])
    return bool(created)


def lift(conn, address: str, scope: str, why: str, actor: str) -> bool:
    """Delete a suppression (reactivation); the reason is kept in the history. True if it existed."""
    row = store.get_suppression(conn, address, scope)
    if row is None or not store.delete_suppressions(conn, [row["id"]]):
        return False
    now = datetime.now(timezone.utc)
    store.insert_history(conn, [{"address": address, "scope": scope, "action": "deleted",
                                 "reason": row["reason"], "actor": actor, "why": why,
                                 "event_key": row["event_key"], "evidence": None, "at": now}])
    data = {"address": address, "scope": scope, "previous_reason": row["reason"], "why": why,
            "actor": actor, "source": {"kind": "api", "event_id": row["event_key"]}}
    store.insert_outbox(conn, [store.outbox_row(store.new_webhook_id(), "recipient.reactivated",
                                                now, data, now)])
    return True


def expire_suppressions(conn, now: datetime | None = None) -> int:
    """Delete suppressions past expires_at, with an `expired` history row each."""
    now = now or datetime.now(timezone.utc)
    rows = conn.execute(select(suppressions.c.id, suppressions.c.address, suppressions.c.scope,
                               suppressions.c.reason, suppressions.c.event_key)
                        .where(suppressions.c.expires_at.is_not(None))
                        .where(suppressions.c.expires_at <= now).limit(10000)).all()
    if not rows:
        return 0
    deleted = store.delete_suppressions(conn, [r.id for r in rows])
    store.insert_history(conn, [{"address": r.address, "scope": r.scope, "action": "expired",
                                 "reason": r.reason, "actor": "policy:expiry", "why": "expired",
                                 "event_key": r.event_key, "evidence": None, "at": now}
                                for r in rows if r.id in deleted])
    return len(deleted)
