"""A raw message from the durable intake (received by the SMTP sink) -> events.

Adapter glue, called by service.process_intake inside its transaction for intake rows of kind
"message". It runs the classification engine (domain.parse.message.parse_message) on the stored
bytes, looks up in the event log what we know about the original messages the report refers to
(by Message-ID: recipient, list, job, virtual MTA, source IP of our send), and hands both to the
pure translation domain.parse.report_events.report_events.

The Message-ID lookup is the last resort of recipient recovery for ARF reports that redact the
recipient (after the VERP envelope, our tracking header, Original-Rcpt-To and List-Unsubscribe,
which the engine tries itself): acct `d`/`r` records carry `header_Message-ID` when PowerMTA is
configured to log it, and the sending core always records it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bounceproc.storage.event_counts import remove_counts
from bounceproc.storage.event_store import insert_events
from bounceproc.storage.intake_rows import pending_kinds, pending_rows
from bounceproc.storage.tables import events, quarantine
from bounceproc.domain.parse.mime import normalise_newlines, parse_headers, split_head
from bounceproc.domain.parse.report_events import message_key, normalise_message_id, report_events

log = logging.getLogger("bounceproc.sink")

SENT_TYPES = ("delivered", "received", "bounced", "deferred", "remote_status")
MAX_LOOKUP_IDS = 200
HEAD_BYTES = 64 * 1024


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of the message itself (not of an enclosed original)."""
    head, _ = split_head(normalise_newlines(raw[:HEAD_BYTES]).lstrip(b"\n"))
    values = parse_headers(head).get("message-id") or [""]
    return values[0]


def lookup_sent(conn, message_ids) -> dict[str, dict[str, str]]:
    """What we recorded about our own sent messages, keyed by bracket-less Message-ID."""
    ids = [m for m in dict.fromkeys(normalise_message_id(m) for m in message_ids) if m][:MAX_LOOKUP_IDS]
    if not ids:
        return {}
    forms = ids + [f"<{m}>" for m in ids]
    rows = conn.execute(
        select(events.c.message_id, events.c.recipient, events.c.list_id, events.c.job_id,
               events.c.vmta, events.c.source_ip, events.c.sender, events.c.type)
        .where(events.c.message_id.in_(forms), events.c.type.in_(SENT_TYPES), events.c.recipient != "")
        .order_by(events.c.id)
        .limit(20 * len(ids))
    ).all()
    found: dict[str, dict[str, str]] = {}
    for r in rows:
        mid = normalise_message_id(r.message_id)
        info = found.get(mid)
        if info is None or (info["type"] != "delivered" and r.type == "delivered"):
            found[mid] = {"recipient": r.recipient, "list_id": r.list_id, "job_id": r.job_id,
                          "vmta": r.vmta, "source_ip": r.source_ip, "sender": r.sender, "type": r.type}
        elif info is not None:
            # Fill blanks from later records of the same message (acct r has the job, d the IP).
            for k in ("list_id", "job_id", "vmta", "source_ip", "sender"):
                if not info[k] and getattr(r, k):
                    info[k] = getattr(r, k)
    return found


def _received_at(meta: dict, row: Any) -> datetime:
    value = meta.get("received_at")
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
            return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    created = getattr(row, "created_at", None)
    if isinstance(created, datetime):
        return created if created.tzinfo else created.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


def parse_report(raw: bytes, rcpt_tos: list[str], settings=None):
    from bounceproc.domain.parse.message import parse_message
    from bounceproc.app.service import classifier_for, verp_format
    classifier = verp = None
    if settings is not None:
        classifier = classifier_for(settings)
        verp = verp_format(settings)
    return parse_message(raw, envelope_to=list(rcpt_tos or ()), classifier=classifier, verp=verp)


NO_EVENT_KINDS = {"autoreply": "an auto-reply", "not-bounce": "not a bounce"}


def log_outcomes(by_row, suppressed: set[str]) -> None:
    """One info line per message: `intake 8: dsn grace@example.com userunknown → suppressed (rule
    text-user-unknown)`; a message without events says so (it is in the quarantine)."""
    for intake_id, kind, row_events in by_row:
        if not row_events:
            log.info("intake %s: %s → no event (see `bounceproc quarantine list`)", intake_id, kind)
        for e in row_events:
            outcome = "suppressed" if e.recipient in suppressed else e.type
            log.info("intake %s: %s %s %s → %s (rule %s)", intake_id, kind, e.recipient or "(unattributed)",
                     e.reason or e.feedback_type or "-", outcome, e.rule or "-")


def quarantine_message(conn, row, reason: str) -> None:
    """Keep a message the engine could not read in the quarantine (idempotent per intake row)."""
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    raw = bytes(row.payload[:8000]).decode("utf-8", "replace")
    conn.execute(ins(quarantine).on_conflict_do_nothing(index_elements=["intake_id", "line_no"]),
                 [{"intake_id": row.id, "origin": row.origin or "sink", "line_no": 0,
                   "reason": reason[:2000], "raw": raw, "created_at": datetime.now(timezone.utc)}])


def _prepare(conn, row, settings):
    """(report, raw, meta, rcpt_tos) for a row, or None after quarantining an unreadable one."""
    raw = bytes(row.payload)
    meta = dict(row.meta or {})
    rcpt_tos = [str(r) for r in meta.get("rcpt_tos") or []]
    report = parse_report(raw, rcpt_tos, settings)
    kind = getattr(report, "kind", "unknown")
    if kind == "unknown":
        quarantine_message(conn, row, "unreadable message: " + (getattr(report, "note", "") or "unknown format"))
        return None
    if kind in NO_EVENT_KINDS:     # accepted, gives no event: visible in `bounceproc quarantine list`
        quarantine_message(conn, row, f"no event: {NO_EVENT_KINDS[kind]}"
                           + (f" ({report.note})" if getattr(report, "note", "") else ""))
    return report, raw, meta, rcpt_tos


def _events_of(conn, row, prepared, sent) -> list:
    """Events for the policy. Unattributed ones (no recipient) are stored here directly: there
    is no address for the policy to decide about, and they must never become a suppression."""
    report, raw, meta, rcpt_tos = prepared
    evs = report_events(report, msg_key=message_key(message_id_of(raw), raw),
                        received_at=_received_at(meta, row), intake_id=getattr(row, "id", None),
                        sent=sent, return_path=rcpt_tos[0] if rcpt_tos else "")
    orphans = [e for e in evs if not e.recipient]
    if orphans:
        insert_events(conn, orphans)
        evs = [e for e in evs if e.recipient]
    return evs


def _original_ids(prepared) -> list[str]:
    return [getattr(v, "original_message_id", "") for v in getattr(prepared[0], "recipients", ()) or ()]


def events_from_message(conn, row, settings) -> list:
    """Events for one intake row of kind "message" (see the module docstring).

    A message the engine reports as "unknown" is quarantined with the engine's note (and gives
    []); auto-replies and non-bounces give [] and are not errors: the raw message stays in the
    intake for its retention period either way.
    """
    prepared = _prepare(conn, row, settings)
    if prepared is None:
        return []
    return _events_of(conn, row, prepared, lookup_sent(conn, _original_ids(prepared)))


def _process_message_batch(conn, settings, ids: list[int]) -> int:
    """The message rows among `ids`, in the caller's transaction; returns how many."""
    from sqlalchemy import bindparam, update

    from bounceproc.app import service
    from bounceproc.storage.tables import intake

    rows = [r for r in pending_rows(conn, ids) if r.kind == "message"]
    prepared = [(r, _prepare(conn, r, settings)) for r in rows]
    mids = [m for _, p in prepared if p is not None for m in _original_ids(p)]
    sent = lookup_sent(conn, mids) if mids else {}
    evs, counts, by_row = [], [], []
    for r, p in prepared:
        row_events = _events_of(conn, r, p, sent) if p is not None else []
        evs.extend(row_events)
        counts.append({"rid": r.id, "n": len(row_events)})
        by_row.append((r.id, p[0].kind if p is not None else "unreadable", row_events))
    res = service.record_events(conn, evs, settings)
    if log.isEnabledFor(logging.INFO):
        log_outcomes(by_row, {k[0] for k in res.keys_created})
    if counts:
        conn.execute(update(intake).where(intake.c.id == bindparam("rid")).values(
            state="done", processed_at=datetime.now(timezone.utc), records=bindparam("n"),
            attempts=intake.c.attempts + 1, error=""), counts)
    return len(rows)


def process_messages(settings, intake_ids) -> int:
    """Process many message intake rows in ONE transaction (the worker's fast path).

    Same result as service.process_intake on each id, at a fixed number of statements per batch:
    one select (rows locked, SKIP LOCKED on PostgreSQL so two workers never share a row), one
    Message-ID lookup, one record_events, one update. Rows of other kinds (acct batches) go
    through service.process_intake, one transaction each; their kind is looked up first, so an
    acct batch's payload is read once. If anything in the message batch fails, each row is
    retried on its own through service.process_intake, so one bad message cannot hold the others
    back. Rows already done are left alone. Returns the number of rows processed.
    """
    from bounceproc import bootstrap
    from bounceproc.app import service

    ids = sorted({int(i) for i in intake_ids})
    if not ids:
        return 0
    eng = bootstrap.engine(settings)
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
            if service.process_intake(settings, i) is not None:
                done += 1
        except Exception:  # recorded on the row (attempts, error); the sweep retries it
            log.warning("intake %s failed on its own too", i)
    return done


# --- reprocessing stored messages with the current rules -------------------------------------

REPROCESS_PAGE = 200
_COMPARED = ("type", "recipient", "reason", "category", "hard", "rule", "feedback_type", "status", "list_id")


def _verdict_line(intake_id: int, before, after) -> str:
    def show(e):
        return "-" if e is None else f"{e['type']} {e['recipient'] or '(unattributed)'} {e['reason']}/{e['category']} rule {e['rule'] or '-'}"
    return f"intake {intake_id}: {show(before)} -> {show(after)}"


def reprocess_messages(settings, since: datetime, *, until: datetime | None = None, dry_run: bool = False,
                       limit: int = 1_000_000, progress=None) -> dict:
    """Re-classify stored raw messages received in [since, until) and replace what changed.

    Per message, in one transaction: events whose classification is unchanged are left alone
    (no second suppression, counter or webhook); changed or vanished ones are deleted and the new
    ones recorded through service.record_events (the policy applies to them as to fresh events).
    Suppressions already made from a verdict that changed are NOT lifted automatically: the
    summary lists them so an operator can lift them (`bounceproc suppressions` / the API).
    """
    from sqlalchemy import delete, update

    from bounceproc import bootstrap

    from bounceproc.app import service
    from bounceproc.storage.tables import intake, suppressions

    eng = bootstrap.engine(settings)
    summary = {"messages": 0, "changed": 0, "events_before": 0, "events_after": 0, "changes": [],
               "suppressions_to_review": []}
    last_id = 0
    while summary["messages"] < limit:
        q = (select(intake.c.id).where(intake.c.kind == "message", intake.c.state.in_(("done", "failed")),
                                       intake.c.created_at >= since, intake.c.id > last_id)
             .order_by(intake.c.id).limit(min(REPROCESS_PAGE, limit - summary["messages"])))
        if until is not None:
            q = q.where(intake.c.created_at < until)
        with eng.connect() as conn:
            ids = list(conn.execute(q).scalars())
        if not ids:
            break
        for intake_id in ids:
            last_id = intake_id
            conn = eng.connect()
            trans = conn.begin()
            try:
                row = conn.execute(select(intake).where(intake.c.id == intake_id)).first()
                if row is None:
                    trans.rollback()
                    continue
                # Unattributed events (no recipient) are re-inserted by events_from_message itself.
                old_rows = conn.execute(select(events).where(events.c.intake_id == intake_id,
                                                             events.c.source.in_(("dsn", "arf")),
                                                             events.c.recipient != "")).mappings().all()
                old = {r["event_key"]: dict(r) for r in old_rows}
                conn.execute(delete(quarantine).where(quarantine.c.intake_id == intake_id, quarantine.c.line_no == 0))
                new = {e.event_key: e for e in events_from_message(conn, row, settings)}
                summary["messages"] += 1
                summary["events_before"] += len(old)
                summary["events_after"] += len(new)
                stale = [k for k, r in old.items()
                         if k not in new or any(r[f] != getattr(new[k], f) for f in _COMPARED)]
                fresh = [e for k, e in new.items() if k not in old or k in stale]
                if stale or fresh:
                    summary["changed"] += 1
                    for k in stale:
                        after = new.get(k)
                        summary["changes"].append(_verdict_line(intake_id, old[k], after and {f: getattr(after, f) for f in _COMPARED}))
                    for e in fresh:
                        if e.event_key not in old:
                            summary["changes"].append(_verdict_line(intake_id, None, {f: getattr(e, f) for f in _COMPARED}))
                    if stale:
                        for s in conn.execute(select(suppressions.c.address, suppressions.c.scope)
                                              .where(suppressions.c.event_key.in_(stale))):
                            summary["suppressions_to_review"].append(f"{s.address} ({s.scope})")
                if dry_run:
                    trans.rollback()
                    continue
                if stale:
                    remove_counts(conn, [old[k] for k in stale])
                    conn.execute(delete(events).where(events.c.event_key.in_(stale)))
                if fresh:
                    service.record_events(conn, fresh, settings, intake_id=intake_id)
                conn.execute(update(intake).where(intake.c.id == intake_id).values(
                    state="done", processed_at=datetime.now(timezone.utc), records=len(new), error=""))
                trans.commit()
            except Exception:
                trans.rollback()
                raise
            finally:
                conn.close()
            if progress and summary["messages"] % 1000 == 0:
                progress(summary["messages"])
    return summary
