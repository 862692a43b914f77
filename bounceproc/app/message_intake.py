"""A raw message from the durable intake (received by the SMTP sink) -> events.

Application layer, called by app.intake (process_intake, process_messages) inside their
transaction for intake rows of kind "message". It runs the classification engine
(domain.parse.forwarded.read_reports) on the stored bytes, looks up in the event log what we know
about the original messages the report refers to (by Message-ID: recipient, list, job, virtual MTA, source IP of our send), and hands both to the
pure translation domain.parse.report_events.report_events.

The Message-ID lookup is the last resort of recipient recovery for ARF reports that redact the
recipient (after the VERP envelope, our tracking header, Original-Rcpt-To and List-Unsubscribe,
which the engine tries itself): acct `d`/`r` records carry `header_Message-ID` when PowerMTA is
configured to log it, and the sending core always records it.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from bounceproc.storage.event_counts import remove_counts
from bounceproc.storage.event_store import insert_events
from bounceproc.storage.intake_rows import insert_quarantine
from bounceproc.storage.tables import events, quarantine
from bounceproc.domain.parse.mime import normalise_newlines, parse_headers, split_head
from bounceproc.domain.parse.report_events import message_key, normalise_message_id, report_events

log = logging.getLogger("bounceproc.intake")

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


def as_delivered(raw: bytes, origin: str, meta: dict) -> bytes:
    """The message as a final delivery would hand it on: the SMTP sink is the final hop, so,
    where the message has no Return-Path field, one with the envelope's MAIL FROM (RFC 5321
    4.4; "<>" for a null sender) is put on top. Readers take a null return path as a sign of an
    automatic message; without the field every message received by the sink looked like one."""
    if not origin.startswith("sink:") or "mail_from" not in meta or not raw.strip():
        return raw      # (an empty message stays empty: unreadable, quarantined as such)
    head = raw[:65536].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    if _RETURN_PATH.search(head):
        return raw
    sender = str(meta.get("mail_from") or "").strip("<> ")
    eol = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    return b"Return-Path: <" + sender.encode("utf-8", "replace")[:320] + b">" + eol + raw


_RETURN_PATH = re.compile(rb"^return-path[ \t]*:", re.I | re.M)


def parse_reports(raw: bytes, rcpt_tos: list[str], settings=None) -> list:
    """The reports in one received message (forwarded ones unwrapped: domain.parse.forwarded)."""
    from bounceproc.app.service import classifier_for, verp_format
    from bounceproc.domain.parse.forwarded import read_reports
    classifier = verp = None
    if settings is not None:
        classifier = classifier_for(settings)
        verp = verp_format(settings)
    return read_reports(raw, envelope_to=list(rcpt_tos or ()), classifier=classifier, verp=verp)


def parse_report(raw: bytes, rcpt_tos: list[str], settings=None):
    """The whole message as one Report (for reprocessing's before/after comparison)."""
    from bounceproc.domain.parse.forwarded import merged
    return merged(parse_reports(raw, rcpt_tos, settings))


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


def prepare(conn, row, settings) -> list:
    """[(report, raw, meta, rcpt_tos)] for a row: one per report it carries (a forward of several
    reports gives several, each with its own raw bytes and so its own event keys), or [] after
    quarantining an unreadable one."""
    raw = bytes(row.payload)
    meta = dict(row.meta or {})
    rcpt_tos = [str(r) for r in meta.get("rcpt_tos") or []]
    found = parse_reports(as_delivered(raw, row.origin or "", meta), rcpt_tos, settings)
    # The message's own bytes (not the delivered form read above) make its event keys.
    found = [w if w.position else dataclasses.replace(w, raw=raw) for w in found]
    if len(found) == 1 and getattr(found[0].report, "kind", "unknown") == "unknown":
        reason = "unreadable message: " + (getattr(found[0].report, "note", "") or "unknown format")
        raw_text = bytes(row.payload[:8000]).decode("utf-8", "replace")
        insert_quarantine(conn, row.id, row.origin or "sink", [(0, reason, raw_text)])
        return []
    cuts = [c for w in found for c in getattr(w.report, "cuts", ())]
    if cuts:      # read, but not all of it: say what was left out
        raw_text = bytes(row.payload[:8000]).decode("utf-8", "replace")
        insert_quarantine(conn, row.id, row.origin or "sink", [(1, "partly read: " + "; ".join(cuts), raw_text)])
    kind = getattr(found[0].report, "kind", "unknown")
    if len(found) == 1 and kind in NO_EVENT_KINDS:   # accepted, gives no event: `bounceproc quarantine list`
        note = getattr(found[0].report, "note", "")
        insert_quarantine(conn, row.id, row.origin or "sink", [(0, f"no event: {NO_EVENT_KINDS[kind]}"
                                                                + (f" ({note})" if note else ""),
                                                                bytes(row.payload[:8000]).decode("utf-8", "replace"))])
    # An unwrapped report's envelope was the forwarding mailbox, not the original return path.
    return [(w.report, w.raw, meta, rcpt_tos if w.position == 0 else []) for w in found]


def message_events(conn, row, prepared, sent) -> list:
    """Events for the policy. Unattributed ones (no recipient) are stored here directly: there
    is no address for the policy to decide about, and they must never become a suppression."""
    evs = []
    for report, raw, meta, rcpt_tos in prepared:
        evs.extend(report_events(report, msg_key=message_key(message_id_of(raw), raw),
                                 received_at=_received_at(meta, row), intake_id=getattr(row, "id", None),
                                 sent=sent, return_path=rcpt_tos[0] if rcpt_tos else ""))
    orphans = [e for e in evs if not e.recipient]
    if orphans:
        insert_events(conn, orphans)
        evs = [e for e in evs if e.recipient]
    return evs


def original_ids(prepared) -> list[str]:
    return [getattr(v, "original_message_id", "") for p in prepared for v in getattr(p[0], "recipients", ()) or ()]


def events_from_message(conn, row, settings) -> list:
    """Events for one intake row of kind "message" (see the module docstring).

    A message the engine reports as "unknown" is quarantined with the engine's note (and gives
    []); auto-replies and non-bounces give [] and are not errors: the raw message stays in the
    intake for its retention period either way.
    """
    prepared = prepare(conn, row, settings)
    if not prepared:
        return []
    return message_events(conn, row, prepared, lookup_sent(conn, original_ids(prepared)))


# --- reprocessing stored messages with the current rules -------------------------------------

REPROCESS_PAGE = 200
_COMPARED = ("type", "recipient", "reason", "category", "hard", "rule", "feedback_type", "status", "list_id")


def _verdict_line(intake_id: int, before, after) -> str:
    def show(e):
        return "-" if e is None else f"{e['type']} {e['recipient'] or '(unattributed)'} {e['reason']}/{e['category']} rule {e['rule'] or '-'}"
    return f"intake {intake_id}: {show(before)} -> {show(after)}"


def _reprocessable(column, since: datetime, until: datetime | None):
    """SELECT column FROM the stored messages received in [since, until) that reprocessing reads."""
    from bounceproc.storage.tables import intake
    q = select(column).where(intake.c.kind == "message", intake.c.state.in_(("done", "failed")),
                             intake.c.created_at >= since)
    return q if until is None else q.where(intake.c.created_at < until)


def count_reprocessable(settings, since: datetime, until: datetime | None = None) -> int:
    """How many messages reprocess_messages would read (for a progress bar's total)."""
    from sqlalchemy import func

    from bounceproc import bootstrap
    with bootstrap.engine(settings).connect() as conn:
        return conn.execute(_reprocessable(func.count(), since, until)).scalar_one()


def reprocess_messages(settings, since: datetime, *, until: datetime | None = None, dry_run: bool = False,
                       limit: int = 1_000_000, progress=None, progress_every: int = 1000) -> dict:
    """Re-classify stored raw messages received in [since, until) and replace what changed.
    `progress(messages done)` is called every `progress_every` messages.

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
        q = (_reprocessable(intake.c.id, since, until).where(intake.c.id > last_id)
             .order_by(intake.c.id).limit(min(REPROCESS_PAGE, limit - summary["messages"])))
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
            if progress and summary["messages"] % progress_every == 0:
                progress(summary["messages"])
    return summary
